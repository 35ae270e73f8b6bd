// TinyLFU's doorkeeper: a Bloom filter in front of the sketch. A key's first access in a sample
// period only sets its bits here; the sketch counts from the second access on. One-hit wonders
// (most keys of a scan) then never occupy sketch counters, so a smaller sketch stays accurate.

/// A Bloom filter of the keys seen once in the current sample period.
package struct Doorkeeper: Sendable {
    private var bits: [UInt64]
    private var bitMask: Int

    /// Creates a doorkeeper for about `expectedEntries` keys per sample period (about 8 bits
    /// per key, three probes: under 5 % false positives at that load).
    /// - Parameter expectedEntries: Keys expected per period.
    package init(expectedEntries: Int) {
        let wantedBits = max(512, min(expectedEntries, 1 << 28) * 8)
        let bitCount = 1 << (Int.bitWidth - (wantedBits - 1).leadingZeroBitCount)
        bits = [UInt64](repeating: 0, count: bitCount / 64)
        bitMask = bitCount - 1
    }

    /// Whether `hash` was put in since the last ``clear()`` (false positives possible).
    package func contains(hash: UInt64) -> Bool {
        for probe in 0..<3 {
            let bit = index(hash, probe)
            if bits[bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
        }
        return true
    }

    /// Puts `hash` in.
    /// - Returns: Whether it was already in (every probed bit set).
    @discardableResult
    package mutating func insert(hash: UInt64) -> Bool {
        var present = true
        for probe in 0..<3 {
            let bit = index(hash, probe)
            let mask: UInt64 = 1 << UInt64(bit & 63)
            if bits[bit >> 6] & mask == 0 {
                present = false
                bits[bit >> 6] |= mask
            }
        }
        return present
    }

    /// Empties the filter (at each sketch halving).
    package mutating func clear() {
        for index in bits.indices { bits[index] = 0 }
    }

    @inline(__always)
    private func index(_ hash: UInt64, _ probe: Int) -> Int {
        Int(truncatingIfNeeded: FrequencySketch.mix(hash ^ (UInt64(probe) &+ 0x51) &* 0xD6E8_FEB8_6659_FD93)) & bitMask
    }
}
