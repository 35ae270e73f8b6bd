// Deterministic pseudo-random numbers for tests, drop injection and the tools: the same seed
// gives the same sequence on every run and machine.

/// A small, fast, seedable generator (SplitMix64), for reproducible drop choices.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    /// - Parameter seed: Any value; equal seeds give equal sequences.
    package init(seed: UInt64) { state = seed }

    /// The next pseudo-random value.
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
