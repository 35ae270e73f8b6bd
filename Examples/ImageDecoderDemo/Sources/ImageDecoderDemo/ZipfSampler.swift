import Glibc  // pow

/// Draws item indices with Zipf-distributed popularity: the item of popularity rank r (from 1)
/// is drawn with probability proportional to 1 / r^s. Which item has which rank is a seeded
/// shuffle, so popularity does not follow the gallery's order (or the items' sizes).
struct ZipfSampler: Sendable {
    /// `cumulative[r]`: probability of drawing a rank <= r (0-based), last element 1.
    private let cumulative: [Double]
    /// `itemForRank[r]`: the item index of popularity rank r (0-based).
    let itemForRank: [Int]
    private var generator: SeededGenerator

    /// - Parameters:
    ///   - count: The number of items (> 0).
    ///   - exponent: The Zipf exponent s (0 is uniform).
    ///   - seed: Seeds both the rank shuffle and the draws.
    /// - Complexity: O(count).
    init(count: Int, exponent: Double, seed: UInt64) {
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
        var generator = SeededGenerator(seed: seed)
        var ranks = Array(0..<count)
        ranks.shuffle(using: &generator)
        itemForRank = ranks
        self.generator = generator
    }

    /// The probability of drawing the item of rank `rank` (0-based).
    func probability(ofRank rank: Int) -> Double {
        rank == 0 ? cumulative[0] : cumulative[rank] - cumulative[rank - 1]
    }

    /// The next item index.
    /// - Complexity: O(log count).
    mutating func next() -> Int {
        let u = Double(generator.next() >> 11) * 0x1p-53
        var low = 0, high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < u { low = middle + 1 } else { high = middle }
        }
        return itemForRank[low]
    }
}

/// The demo's own seeded generator (SplitMix64), so every variant of a comparison sees the same
/// access sequence; the library keeps its generator out of its public API.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
