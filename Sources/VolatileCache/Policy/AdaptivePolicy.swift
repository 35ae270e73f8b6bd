// W-TinyLFU (Einziger, Friedman, Manes: "TinyLFU: A Highly Efficient Cache Admission Policy",
// and Caffeine), bounded by weight and size-aware:
//
//   new key ─► window LRU (1 %) ─overflow─► candidate ─TinyLFU─► main SLRU (99 %)
//                                              │ loses            probation (20 %) ─hit─► protected (80 %)
//                                              ▼                        ▲                    │ overflow
//                                           evicted                     └────────────────────┘
//
// A newcomer first lives in a small LRU window, so a burst of accesses to a new key is served
// (pure LFU would refuse it). When the window overflows, its oldest key becomes a candidate for
// the main space and is compared with the victims at the front of probation: it gets in only
// if its recent frequency per byte beats theirs (ties keep the incumbents). A one-time scan is
// therefore turned away at the door instead of flushing the frequent keys, and the sketch's
// periodic halving lets a popular set that moves replace the old one.
//
// Size awareness: a candidate is compared with as many victims as it takes to make room for it
// (up to `victimLimit`), by summed frequency over summed weight; with equal weights this is
// Caffeine's one-for-one comparison.

/// The adaptive policy (`.adaptive`): W-TinyLFU with a frequency sketch, an admission window,
/// a segmented main space, and size-aware admission.
package struct AdaptivePolicy<Key: Hashable & Sendable>: ResidencyPolicy {
    private static var window: Int { 0 }
    private static var probation: Int { 1 }
    private static var protected: Int { 2 }

    private var queues = PolicyQueues<Key>(count: 3)
    /// Frequencies and the admission rule.
    package private(set) var admission: TinyLFU
    /// The most weight kept resident.
    package let capacity: Int
    /// The window's share of the capacity.
    package let windowCapacity: Int
    /// The protected segment's share of the main space.
    package let protectedCapacity: Int
    /// Most victims a candidate is compared with at once.
    package let victimLimit: Int
    /// Entries from the least recently used end of probation, and of protected, among which
    /// the victims are chosen (lowest value per byte first).
    package let probationSample: Int, protectedSample: Int
    /// Whether the sketch grows with the number of resident keys.
    private let growsSketch: Bool
    /// Comparisons the candidate won and lost, for reports.
    package private(set) var admissions = 0, rejections = 0

    /// Creates an empty policy.
    /// - Parameters:
    ///   - capacity: The most weight kept resident.
    ///   - expectedEntries: Sizes the sketch for this many keys; nil starts small and grows
    ///     (forgetting counts) with twice the number of keys known (see ``noteKnownKeys(_:)``).
    ///   - windowFraction: The window's share of the capacity (Caffeine's default 1 %).
    ///   - protectedFraction: The protected segment's share of the main space (80 %).
    ///   - usesDoorkeeper: Whether first accesses go to a Bloom filter, not the sketch.
    ///   - victimLimit: Most victims compared with one candidate at a time.
    ///   - probationSample: Entries from probation's old end among which victims are chosen.
    ///   - protectedSample: Entries from protected's old end among which victims are chosen
    ///     (more when it takes more to make room).
    package init(
        capacity: Int, expectedEntries: Int? = nil, windowFraction: Double = 0.01, protectedFraction: Double = 0.8,
        usesDoorkeeper: Bool = false, victimLimit: Int = 16, probationSample: Int = 1, protectedSample: Int = 1
    ) {
        self.probationSample = max(0, probationSample)
        self.protectedSample = max(0, protectedSample)
        self.capacity = max(0, capacity)
        windowCapacity = max(0, Int(Double(self.capacity) * min(1, max(0, windowFraction))))
        protectedCapacity = Int(Double(self.capacity - windowCapacity) * min(1, max(0, protectedFraction)))
        self.victimLimit = max(1, victimLimit)
        growsSketch = expectedEntries == nil
        admission = TinyLFU(expectedEntries: expectedEntries ?? 64, usesDoorkeeper: usesDoorkeeper)
    }

    package var weightedSize: Int { queues.queues.reduce(0) { $0 + $1.weight } }
    package var count: Int { queues.count }
    package func contains(_ key: Key) -> Bool { queues.slot(of: key) != nil }

    /// The estimated recent frequency of a hash (for reports and tests).
    package func frequency(hash: UInt64) -> Int { admission.frequency(hash: hash) }

    /// Sizes the sketch for the keys the cache knows (resident or not: in the cache, hot and
    /// volatile entries). Twice that many sketch words keep the counts of the keys that compete
    /// for room apart and make the sample period (ten accesses a word) long enough to rank them.
    /// Growing forgets the counts of all but the resident keys, so it happens at powers of two
    /// only. No effect if the
    /// policy was created with `expectedEntries`.
    /// - Parameter count: The number of keys known.
    package mutating func noteKnownKeys(_ count: Int) {
        if growsSketch { growSketch(2 * count) }
    }

    private mutating func growSketch(_ entries: Int) {
        let queues = self.queues
        admission.ensureCapacity(entries) {
            (0..<3).flatMap { queues.slots(in: $0) }.map { queues[$0].hash }
        }
    }

    /// Records an access for frequency only (what the cache's read-buffer drain calls for
    /// keys this policy does not hold, e.g. volatile hits).
    package mutating func recordAccess(hash: UInt64) {
        admission.recordAccess(hash: hash)
    }

    @discardableResult
    package mutating func recordHit(_ key: Key, hash: UInt64) -> Bool {
        admission.recordAccess(hash: hash)
        guard let slot = queues.slot(of: key) else { return false }
        switch queues[slot].queue {
        case Self.window, Self.protected:
            queues.moveToBack(slot, of: queues[slot].queue)
        default:
            // Probation → protected; protected's overflow falls back to probation's back.
            queues.moveToBack(slot, of: Self.protected)
            while queues.queues[Self.protected].weight > protectedCapacity, let front = queues.front(Self.protected),
                front != slot
            {
                queues.moveToBack(front, of: Self.probation)
            }
        }
        return true
    }

    @discardableResult
    package mutating func recordMiss(_ key: Key, hash: UInt64, weight: Int, evicted: (Key) -> Void) -> Bool {
        admission.recordAccess(hash: hash)
        let weight = max(1, weight)
        guard weight <= capacity else {
            evicted(key)
            return false
        }
        queues.append(key, hash: hash, weight: weight, to: Self.window)
        if growsSketch { growSketch(2 * queues.count) }
        // The window's oldest keys become candidates at the back of probation.
        var firstCandidate: Int? = nil
        while queues.queues[Self.window].weight > windowCapacity, let front = queues.front(Self.window) {
            queues.moveToBack(front, of: Self.probation)
            if firstCandidate == nil { firstCandidate = front }
        }
        var resident = true
        evictFromMain(firstCandidate: firstCandidate) { gone in
            if gone == key { resident = false }
            evicted(gone)
        }
        return resident
    }

    /// Evicts until the weight fits: each candidate (from `firstCandidate` to the back of
    /// probation) against victims from the old ends of probation and protected.
    private mutating func evictFromMain(firstCandidate: Int?, evicted: (Key) -> Void) {
        var candidate = firstCandidate
        var total = weightedSize
        func evict(_ slot: Int) {
            let node = queues.remove(slot)
            total -= node.weight
            evicted(node.key)
        }
        while total > capacity {
            guard let current = candidate else {
                // Over capacity with the window under its share (a large key passed through it,
                // or keys were removed): the window's oldest key still has to earn its place.
                if let front = queues.front(Self.window) {
                    queues.moveToBack(front, of: Self.probation)
                    candidate = front
                    continue
                }
                guard let victim = queues.front(Self.probation) ?? queues.front(Self.protected) else { return }
                evict(victim)
                continue
            }
            let candidateWeight = queues[current].weight
            let needed = min(total - capacity, candidateWeight)
            // Victims: a sample from the least recently used ends of probation (older than the
            // candidate) and protected, topped up from protected until it could make room,
            // then the lowest value per byte first. Without protected in the sample, a large
            // key that was hit once sits in protected for good (measured: 93 % of the optimum
            // instead of 97 % on Zipf 1.1 with demo-like sizes).
            var sample: [Int] = []
            var sampled = 0
            var cursor = queues.front(Self.probation)
            while let slot = cursor, slot != current, sample.count < probationSample {
                sample.append(slot)
                sampled += queues[slot].weight
                cursor = queues.next(after: slot)
            }
            let sampleLimit = probationSample + protectedSample + victimLimit
            cursor = queues.front(Self.protected)
            while let slot = cursor, sample.count < sampleLimit,
                sample.count < probationSample + protectedSample || sampled < needed
            {
                sample.append(slot)
                sampled += queues[slot].weight
                cursor = queues.next(after: slot)
            }
            if sample.count > 1 {
                let densities = sample.map { Double(admission.frequency(hash: queues[$0].hash)) / Double(queues[$0].weight) }
                sample = sample.indices.sorted { densities[$0] != densities[$1] ? densities[$0] < densities[$1] : $0 < $1 }.map { sample[$0] }
            }
            var victims: [Int] = []
            var freed = 0
            for slot in sample where freed < needed && victims.count < victimLimit {
                victims.append(slot)
                freed += queues[slot].weight
            }
            if victims.isEmpty {
                // Only candidates remain: the oldest of them goes.
                candidate = queues.next(after: current)
                evict(current)
                continue
            }
            let admitted = admission.admit(
                candidate: WeightedHash(hash: queues[current].hash, weight: candidateWeight),
                victims: victims.map { WeightedHash(hash: queues[$0].hash, weight: queues[$0].weight) })
            if admitted {
                admissions += 1
                for victim in victims { evict(victim) }
                // Room made for the whole candidate: the next one (if any) competes next.
                if freed >= candidateWeight { candidate = queues.next(after: current) }
            } else {
                rejections += 1
                candidate = queues.next(after: current)
                evict(current)
            }
        }
    }

    package mutating func remove(_ key: Key) {
        if let slot = queues.slot(of: key) { queues.remove(slot) }
    }

    /// Resident keys by value per byte (estimated frequency over weight), lowest first; ties
    /// in policy order (probation from its front, then the window, then protected).
    /// - Complexity: O(n log n).
    package func evictionOrder() -> [Key] {
        let ordered = queues.slots(in: Self.probation) + queues.slots(in: Self.window) + queues.slots(in: Self.protected)
        let ranked = ordered.enumerated().map { position, slot in
            let node = queues[slot]
            return (key: node.key, density: Double(admission.frequency(hash: node.hash)) / Double(node.weight), position: position)
        }
        return ranked.sorted { $0.density != $1.density ? $0.density < $1.density : $0.position < $1.position }.map(\.key)
    }

    /// Weight per region (window, probation, protected), for reports and tests.
    package var regionWeights: (window: Int, probation: Int, protected: Int) {
        (queues.queues[Self.window].weight, queues.queues[Self.probation].weight, queues.queues[Self.protected].weight)
    }
}
