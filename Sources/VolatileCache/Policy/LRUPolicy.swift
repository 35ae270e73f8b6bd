/// Least recently used, bounded by weight: the cache's historical policy (`.lru`), and the
/// simulator's baseline.
package struct LRUPolicy<Key: Hashable & Sendable>: ResidencyPolicy {
    private var queues = PolicyQueues<Key>(count: 1)
    /// The most weight kept resident.
    package let capacity: Int

    /// Creates an empty policy.
    /// - Parameter capacity: The most weight kept resident.
    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    package var weightedSize: Int { queues.queues[0].weight }
    package var count: Int { queues.count }
    package func contains(_ key: Key) -> Bool { queues.slot(of: key) != nil }

    @discardableResult
    package mutating func recordHit(_ key: Key, hash: UInt64) -> Bool {
        guard let slot = queues.slot(of: key) else { return false }
        queues.moveToBack(slot, of: 0)
        return true
    }

    @discardableResult
    package mutating func recordMiss(_ key: Key, hash: UInt64, weight: Int, evicted: (Key) -> Void) -> Bool {
        let weight = max(1, weight)
        guard weight <= capacity else {
            evicted(key)
            return false
        }
        queues.append(key, hash: hash, weight: weight, to: 0)
        while queues.queues[0].weight > capacity, let front = queues.front(0) {
            evicted(queues.remove(front).key)
        }
        return true
    }

    package mutating func remove(_ key: Key) {
        if let slot = queues.slot(of: key) { queues.remove(slot) }
    }

    package func evictionOrder() -> [Key] {
        queues.slots(in: 0).map { queues[$0].key }
    }
}
