// A count-min sketch of recent access frequencies with 4-bit counters (TinyLFU's "frequency
// histogram"). Sixteen counters share a 64-bit word; a key touches four counters chosen by
// four independent mixes of its hash, and its estimate is the smallest of them. Counters
// saturate at 15: the admission policy only needs to rank keys, not count them.
//
// Aging: after `sampleSize` recorded accesses (ten per expected entry) every counter is
// halved at once, so the sketch follows a popular set that moves instead of remembering the
// past forever. Increments are conservative (only the counters equal to the minimum grow),
// which keeps hash collisions from inflating the estimates of rare keys.

/// A frequency sketch: approximate, aging access counts of hashed keys in a fixed amount of
/// memory (8 bytes per expected entry).
///
/// Not thread-safe: the cache updates it under its policy lock, from drained read buffers,
/// never on the hit path.
package struct FrequencySketch: Sendable {
    /// Sixteen 4-bit counters per word.
    private var table: [UInt64]
    private var tableMask: Int
    /// Accesses recorded since the last halving (corrected for truncation, as Caffeine does).
    package private(set) var additions: Int
    /// Accesses after which every counter is halved.
    package private(set) var sampleSize: Int
    /// Number of halvings so far.
    package private(set) var resetCount = 0

    /// The largest value a counter holds.
    package static let maximumFrequency = 15

    /// Creates a sketch sized for about `expectedEntries` distinct keys in the cache.
    /// - Parameter expectedEntries: The number of entries the cache is expected to hold
    ///   (at least 1; rounded up to a power of two, minimum 16).
    package init(expectedEntries: Int) {
        let words = Self.wordCount(for: expectedEntries)
        table = [UInt64](repeating: 0, count: words)
        tableMask = words - 1
        additions = 0
        sampleSize = 10 * words
    }

    private static func wordCount(for entries: Int) -> Int {
        let wanted = max(16, min(entries, 1 << 30))
        return 1 << (Int.bitWidth - (wanted - 1).leadingZeroBitCount)
    }

    /// Number of entries the sketch is sized for (its word count).
    package var capacity: Int { table.count }

    /// Grows the sketch if it was sized for fewer entries; growing forgets every count.
    /// - Parameter expectedEntries: The number of entries the cache now expects to hold.
    /// - Complexity: O(new size) when it grows, else O(1).
    package mutating func ensureCapacity(_ expectedEntries: Int) {
        guard Self.wordCount(for: expectedEntries) > table.count else { return }
        self = FrequencySketch(expectedEntries: expectedEntries)
    }

    /// The estimated number of recent accesses of `hash`, 0 to ``maximumFrequency``.
    /// - Parameter hash: The key's hash.
    package func frequency(hash: UInt64) -> Int {
        var minimum = Self.maximumFrequency
        for row in 0..<4 {
            let (word, shift) = location(hash, row: row)
            minimum = min(minimum, Int((table[word] >> shift) & 0xF))
        }
        return minimum
    }

    /// Records one access of `hash`; halves every counter when the sample period ends.
    /// - Parameters:
    ///   - hash: The key's hash.
    ///   - countingOnly: Count the access towards the sample period without raising a
    ///     counter (a doorkeeper absorbed it).
    /// - Complexity: O(1), or O(capacity) on the access that ends a sample period.
    package mutating func increment(hash: UInt64, countingOnly: Bool = false) {
        let minimum = countingOnly ? Self.maximumFrequency : frequency(hash: hash)
        if minimum < Self.maximumFrequency {
            // Conservative update: raise only the counters that hold the minimum (the
            // locations are recomputed rather than stored: four mixes cost less than an array).
            for row in 0..<4 {
                let (word, shift) = location(hash, row: row)
                if Int((table[word] >> shift) & 0xF) == minimum { table[word] &+= 1 << shift }
            }
        }
        additions += 1
        if additions >= sampleSize { halve() }
    }

    /// Raises `hash`'s counters to at least `frequency` without counting an access: carries a
    /// resident key's estimate over into a grown sketch.
    /// - Parameters:
    ///   - hash: The key's hash.
    ///   - frequency: The estimate to keep (clamped to 0...15).
    package mutating func carry(hash: UInt64, frequency: Int) {
        let value = UInt64(min(max(0, frequency), Self.maximumFrequency))
        for row in 0..<4 {
            let (word, shift) = location(hash, row: row)
            if (table[word] >> shift) & 0xF < value {
                table[word] = (table[word] & ~(0xF << shift)) | (value << shift)
            }
        }
    }

    /// Halves every counter (the aging step). Called automatically; public for tests.
    /// - Complexity: O(capacity).
    package mutating func halve() {
        var odd = 0
        for index in table.indices {
            odd += (table[index] & 0x1111_1111_1111_1111).nonzeroBitCount
            table[index] = (table[index] >> 1) & 0x7777_7777_7777_7777
        }
        additions = max(0, (additions - odd / 4) / 2)
        resetCount += 1
    }

    /// Forgets every count.
    package mutating func clear() {
        for index in table.indices { table[index] = 0 }
        additions = 0
    }

    /// The word and bit offset of `hash`'s counter in row `row`: four independent mixes.
    @inline(__always)
    private func location(_ hash: UInt64, row: Int) -> (word: Int, shift: UInt64) {
        let mixed = Self.mix(hash &+ (UInt64(row) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        return (Int(truncatingIfNeeded: mixed) & tableMask, (mixed >> 60) << 2)
    }

    /// SplitMix64's finalizer: every input bit affects every output bit.
    @inline(__always)
    package static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
