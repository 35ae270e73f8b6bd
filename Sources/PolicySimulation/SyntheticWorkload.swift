import Glibc  // pow
import VolatileSystem  // SplitMix64

/// Draws keys with Zipf-distributed popularity: rank r (from 1) with probability ∝ 1 / r^s.
/// Which key has which rank is a seeded shuffle, so popularity does not follow key order.
package struct ZipfGenerator: Sendable {
    private let cumulative: [Double]
    /// The key of each popularity rank (0-based).
    package private(set) var keyForRank: [Int]
    private var random: SplitMix64

    /// - Parameters:
    ///   - count: Number of keys, 0..<count (> 0).
    ///   - exponent: The Zipf exponent s.
    ///   - seed: Seeds the shuffle and the draws.
    package init(count: Int, exponent: Double, seed: UInt64) {
        precondition(count > 0)
        var weights = (1...count).map { 1 / pow(Double($0), exponent) }
        let total = weights.reduce(0, +)
        var running = 0.0
        for index in weights.indices {
            running += weights[index] / total
            weights[index] = running
        }
        weights[count - 1] = 1
        cumulative = weights
        random = SplitMix64(seed: seed)
        keyForRank = Array(0..<count)
        keyForRank.shuffle(using: &random)
    }

    /// Gives the ranks to a new seeded shuffle of the keys (the popular set moves).
    package mutating func reshuffle() {
        keyForRank.shuffle(using: &random)
    }

    /// The next key.
    /// - Complexity: O(log count).
    package mutating func next() -> Int {
        let u = Double(random.next() >> 11) * 0x1p-53
        var low = 0, high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < u { low = middle + 1 } else { high = middle }
        }
        return keyForRank[low]
    }
}

/// The synthetic workloads of issue 15, each a deterministic trace.
package enum SyntheticWorkload {
    /// Zipf accesses over `items` keys of equal weight 1.
    /// - Parameters:
    ///   - items: Number of keys.
    ///   - exponent: Zipf exponent.
    ///   - accesses: Trace length.
    ///   - seed: Seed.
    package static func zipf(items: Int, exponent: Double, accesses: Int, seed: UInt64) -> Trace {
        var generator = ZipfGenerator(count: items, exponent: exponent, seed: seed)
        return Trace(accesses: (0..<accesses).map { _ in Trace.Access(key: generator.next(), weight: 1) })
    }

    /// Zipf accesses interrupted every `scanEvery` accesses by a full scan of all `items` keys
    /// in order (marked ``Trace/Access/isScan``). The Zipf accesses are the same as
    /// ``zipf(items:exponent:accesses:seed:)`` with the same seed, so the two compare directly.
    /// - Parameters:
    ///   - items: Number of keys.
    ///   - exponent: Zipf exponent.
    ///   - accesses: Number of Zipf accesses (scans come on top).
    ///   - scanEvery: Zipf accesses between scans.
    ///   - seed: Seed.
    package static func zipfWithScans(items: Int, exponent: Double, accesses: Int, scanEvery: Int, seed: UInt64) -> Trace {
        var generator = ZipfGenerator(count: items, exponent: exponent, seed: seed)
        var trace: [Trace.Access] = []
        trace.reserveCapacity(accesses + accesses / scanEvery * items)
        for index in 0..<accesses {
            if index > 0 && index % scanEvery == 0 {
                for key in 0..<items { trace.append(Trace.Access(key: key, weight: 1, isScan: true)) }
            }
            trace.append(Trace.Access(key: generator.next(), weight: 1))
        }
        return Trace(accesses: trace)
    }

    /// Zipf accesses whose popular set moves halfway: the ranks are given to a new shuffle of
    /// the keys.
    package static func shiftingZipf(items: Int, exponent: Double, accesses: Int, seed: UInt64) -> Trace {
        var generator = ZipfGenerator(count: items, exponent: exponent, seed: seed)
        var trace: [Trace.Access] = []
        trace.reserveCapacity(accesses)
        for index in 0..<accesses {
            if index == accesses / 2 { generator.reshuffle() }
            trace.append(Trace.Access(key: generator.next(), weight: 1))
        }
        return Trace(accesses: trace)
    }

    /// Zipf accesses over keys whose sizes spread like the demo's (log-uniform between
    /// `minimumWeight` and `maximumWeight`, independent of popularity).
    package static func zipfVariableSizes(
        items: Int, exponent: Double, accesses: Int, minimumWeight: Int, maximumWeight: Int, seed: UInt64
    ) -> Trace {
        var random = SplitMix64(seed: seed ^ 0xA5A5_A5A5)
        let low = log(Double(minimumWeight)), high = log(Double(maximumWeight))
        let weights = (0..<items).map { _ in Int(exp(low + (high - low) * Double(random.next() >> 11) * 0x1p-53)) }
        var generator = ZipfGenerator(count: items, exponent: exponent, seed: seed)
        return Trace(accesses: (0..<accesses).map { _ in
            let key = generator.next()
            return Trace.Access(key: key, weight: weights[key])
        })
    }
}
