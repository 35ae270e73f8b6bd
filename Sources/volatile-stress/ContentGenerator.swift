// The objects of a run: their sizes and their bytes, both deterministic functions of the key
// and the seed, so that any access can check every byte without keeping a copy.
//
// Speed matters even in a debug build (CI runs `swift test` in debug and the pressure tests
// regenerate hundreds of MiB), so content is not computed word by word: each key's bytes are a
// window of one precomputed random pattern, copied with memcpy and compared with memcmp. The
// window starts at a key-dependent offset, and the first word of every 4 KiB of the object is
// replaced by a header that mixes the key and the page index, so a page that reads as zeros, a
// page of another key, or a page moved within the object all fail verification.

import Glibc
import VolatileMemory
import VolatileSystem  // SplitMix64

/// Sizes and content of the workload's objects.
struct ContentGenerator: Sendable {
    /// Bytes between two page headers: the page size the tests and drops work in.
    static let headerStride = 4096
    /// Possible window starts: the pattern is this many words longer than the largest object.
    static let windowSlots = 1 << 15

    let seed: UInt64
    /// Object size per key; keys are `0..<sizes.count`.
    let sizes: [Int]
    /// The total of `sizes`.
    let totalBytes: Int
    /// Random words; never mutated after init (an array so that the type is `Sendable`).
    private let pattern: [UInt64]

    /// Creates the objects of a working set: sizes spread log-uniformly from `smallest` to
    /// `largest` bytes (so small objects are many and large ones carry most bytes), until their
    /// total reaches `workingSetBytes`.
    ///
    /// - Parameters:
    ///   - workingSetBytes: The total size of all objects.
    ///   - smallest: The smallest object.
    ///   - largest: The largest object.
    ///   - seed: Same seed, same sizes and content.
    /// - Complexity: O(largest / 8 + key count).
    init(workingSetBytes: Int, smallest: Int = StressOptions.smallestObject, largest: Int = StressOptions.largestObject, seed: UInt64) {
        self.seed = seed
        var random = SplitMix64(seed: seed ^ 0x5354_5245_5353_0001)
        var sizes: [Int] = []
        var total = 0
        let logSmallest = log(Double(smallest))
        let logLargest = log(Double(largest))
        while total < workingSetBytes {
            let unit = Double(random.next() >> 11) / Double(1 << 53)
            var size = Int(exp(logSmallest + unit * (logLargest - logSmallest)))
            size = max(smallest, min(largest, size, max(smallest, workingSetBytes - total)))
            sizes.append(size)
            total += size
        }
        self.sizes = sizes
        self.totalBytes = total
        var words = SplitMix64(seed: seed ^ 0x5041_5454_4552_4e00)
        let wordCount = largest / 8 + Self.windowSlots + 1
        self.pattern = [UInt64](unsafeUninitializedCapacity: wordCount) { buffer, count in
            for index in 0..<wordCount { buffer[index] = words.next() }
            count = wordCount
        }
    }

    /// The number of keys.
    var keyCount: Int { sizes.count }

    /// The size of `key`'s object in bytes.
    func size(of key: Int) -> Int { sizes[key] }

    /// Writes `key`'s content at `range` (byte offsets in the object) into `buffer`, which
    /// holds the whole object.
    ///
    /// - Parameters:
    ///   - key: The key.
    ///   - buffer: The object's memory, `size(of: key)` bytes. Do not escape the pointer.
    ///   - range: The bytes to write; nil for all of them.
    /// - Complexity: O(range.count), a memcpy and one store per 4 KiB.
    func fill(_ key: Int, into buffer: UnsafeMutableRawBufferPointer, range: Range<Int>? = nil) {
        let range = range ?? 0..<buffer.count
        precondition(buffer.count == size(of: key) && range.lowerBound >= 0 && range.upperBound <= buffer.count)
        guard !range.isEmpty, let base = buffer.baseAddress else { return }
        let start = windowStart(of: key)
        pattern.withUnsafeBytes { source -> Void in
            _ = memcpy(base + range.lowerBound, source.baseAddress! + start + range.lowerBound, range.count)
        }
        // Headers at every stride boundary inside the range (where a whole word fits).
        var page = (range.lowerBound + Self.headerStride - 1) / Self.headerStride * Self.headerStride
        while page < range.upperBound {
            if page + 8 <= buffer.count {
                // A header straddling the range's end is written whole: the caller writes whole pages.
                base.storeBytes(of: header(key, page: page / Self.headerStride), toByteOffset: page, as: UInt64.self)
            }
            page += Self.headerStride
        }
    }

    /// Checks every byte of `bytes` against `key`'s content.
    ///
    /// - Parameters:
    ///   - key: The key.
    ///   - bytes: What the store returned. Do not escape the pointer.
    /// - Returns: nil when the content is right; otherwise what is wrong.
    /// - Complexity: O(bytes.count), a memcmp and one load per 4 KiB.
    func verify(_ key: Int, _ bytes: UnsafeRawBufferPointer) -> Mismatch? {
        guard bytes.count == size(of: key) else {
            return Mismatch(key: key, offset: -1, detail: "size \(bytes.count), expected \(size(of: key))")
        }
        guard let base = bytes.baseAddress else { return nil }
        let start = windowStart(of: key)
        return pattern.withUnsafeBytes { source -> Mismatch? in
            let expected = source.baseAddress! + start
            var page = 0
            while page < bytes.count {
                let end = min(page + Self.headerStride, bytes.count)
                var bodyStart = page
                if page + 8 <= bytes.count {
                    let word = base.loadUnaligned(fromByteOffset: page, as: UInt64.self)
                    if word != header(key, page: page / Self.headerStride) {
                        return Mismatch(key: key, offset: page, detail: word == 0 ? "page reads as zeros" : "wrong page header")
                    }
                    bodyStart = page + 8
                }
                if bodyStart < end, memcmp(base + bodyStart, expected + bodyStart, end - bodyStart) != 0 {
                    return Mismatch(key: key, offset: bodyStart, detail: "content differs in the page at \(page)")
                }
                page = end
            }
            return nil
        }
    }

    /// A byte-offset where the content of a key goes wrong.
    struct Mismatch: CustomStringConvertible {
        var key: Int
        var offset: Int
        var detail: String
        var description: String { "key \(key) at byte \(offset): \(detail)" }
    }

    private func windowStart(of key: Int) -> Int {
        Int(truncatingIfNeeded: mix(seed &+ UInt64(truncatingIfNeeded: key) &* 0x9E37_79B9_7F4A_7C15) % UInt64(Self.windowSlots)) * 8
    }

    private func header(_ key: Int, page: Int) -> UInt64 {
        // Never zero, so a dropped page (zeros) can never pass.
        mix(seed ^ (UInt64(truncatingIfNeeded: key) << 24) ^ UInt64(truncatingIfNeeded: page) ^ 0x4845_4144) | 1
    }

    private func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
