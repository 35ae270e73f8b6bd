// TinyLFU admission: a newcomer enters the main space only if it is more valuable than what it
// would push out. Value is the sketch's recent-frequency estimate; with sizes, value per byte
// (the static optimum keeps the keys with the most accesses per byte, a greedy knapsack), so
// one large object must beat the summed frequency of the small ones it would displace.

/// A key's hash and weight (bytes, or any cost unit), as admission compares them.
package struct WeightedHash: Sendable, Equatable {
    /// The key's hash.
    package var hash: UInt64
    /// The key's weight (> 0).
    package var weight: Int

    /// Creates one.
    package init(hash: UInt64, weight: Int) {
        self.hash = hash
        self.weight = max(1, weight)
    }
}

/// TinyLFU: a ``FrequencySketch`` (with an optional ``Doorkeeper``) and the admission rule.
package struct TinyLFU: Sendable {
    /// Recent access frequencies.
    package private(set) var sketch: FrequencySketch
    /// First-access filter, when enabled.
    package private(set) var doorkeeper: Doorkeeper?

    /// Creates the admission policy.
    /// - Parameters:
    ///   - expectedEntries: Entries the cache is expected to hold (sizes the sketch).
    ///   - usesDoorkeeper: Whether first accesses go to a Bloom filter instead of the sketch.
    package init(expectedEntries: Int, usesDoorkeeper: Bool = false) {
        sketch = FrequencySketch(expectedEntries: expectedEntries)
        doorkeeper = usesDoorkeeper ? Doorkeeper(expectedEntries: sketch.sampleSize) : nil
    }

    /// Grows the sketch if the cache now holds more entries. Counts are forgotten except those
    /// of `keep`, carried over (the resident keys, so that a burst of new keys that grows the
    /// sketch does not also wipe out what the incumbents earned).
    /// - Parameters:
    ///   - entries: The number of entries to size for.
    ///   - keep: The hashes whose estimates survive the growth.
    /// - Returns: Whether the sketch grew.
    @discardableResult
    package mutating func ensureCapacity(_ entries: Int, keeping keep: () -> [UInt64] = { [] }) -> Bool {
        var grown = sketch
        grown.ensureCapacity(entries)
        guard grown.capacity != sketch.capacity else { return false }
        let carried = keep().map { ($0, frequency(hash: $0)) }
        sketch = grown
        for (hash, estimate) in carried { sketch.carry(hash: hash, frequency: estimate) }
        if doorkeeper != nil { doorkeeper = Doorkeeper(expectedEntries: sketch.sampleSize) }
        return true
    }

    /// Records one access of a key (a hit or a miss). The cache calls this while draining its
    /// read buffers under the policy lock, not on the hit path.
    /// - Parameter hash: The key's hash.
    package mutating func recordAccess(hash: UInt64) {
        if doorkeeper != nil {
            let resets = sketch.resetCount
            if doorkeeper!.insert(hash: hash) {
                sketch.increment(hash: hash)
            } else {
                // Count the access for the sample period without a counter.
                sketch.increment(hash: hash, countingOnly: true)
            }
            if sketch.resetCount != resets { doorkeeper!.clear() }
        } else {
            sketch.increment(hash: hash)
        }
    }

    /// The estimated recent accesses of a key (0 to 16 with a doorkeeper, else 0 to 15).
    /// - Parameter hash: The key's hash.
    package func frequency(hash: UInt64) -> Int {
        let counted = sketch.frequency(hash: hash)
        guard let doorkeeper else { return counted }
        return counted + (doorkeeper.contains(hash: hash) ? 1 : 0)
    }

    /// Equal weights: admit `candidate` in place of `victim` only if it is strictly more frequent
    /// (ties keep the incumbent, which makes a scan of new keys unable to displace anything).
    /// - Parameters:
    ///   - candidate: The newcomer's hash.
    ///   - victim: The hash of the entry it would replace.
    /// - Returns: Whether the candidate should replace the victim.
    package func admit(candidate: UInt64, victim: UInt64) -> Bool {
        frequency(hash: candidate) > frequency(hash: victim)
    }

    /// Size-aware: admit `candidate` in place of `victims` only if its frequency per byte is
    /// strictly higher than theirs taken together (sum of frequencies over sum of weights).
    /// - Parameters:
    ///   - candidate: The newcomer.
    ///   - victims: The entries it would displace (the caller picks enough to make room).
    /// - Returns: Whether the candidate should replace the victims; true if there are none.
    /// - Complexity: O(victims).
    package func admit(candidate: WeightedHash, victims: some Sequence<WeightedHash>) -> Bool {
        var victimFrequency = 0, victimWeight = 0
        for victim in victims {
            victimFrequency += frequency(hash: victim.hash)
            victimWeight += victim.weight
        }
        guard victimWeight > 0 else { return true }
        let candidateFrequency = frequency(hash: candidate.hash)
        // f_c / w_c > f_v / w_v, cross-multiplied (in Double: a weight times a frequency
        // could overflow Int for weights near Int.max).
        return Double(candidateFrequency) * Double(victimWeight) > Double(victimFrequency) * Double(candidate.weight)
    }
}
