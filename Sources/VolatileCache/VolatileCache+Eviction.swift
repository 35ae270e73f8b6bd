// Limits: the total cost and the entry count, enforced after each insertion or regeneration
// by evicting the least recently used entries (hot or volatile, by stamp; the same recency
// policy as demotion, see `VolatileCache+HotSet.swift`). A pinned
// victim leaves the cache at once; its memory is freed when its last pin ends. The entry just
// produced is never the victim (NSCache on Linux evicts the object it just inserted).
extension VolatileCache {
    /// Evicts least recently used entries until the cache fits its count and cost limits.
    /// - Parameter protected: The entry just produced, which is never the victim.
    /// - Complexity: O(shards + hot entries) per eviction.
    func enforceLimits(protecting protected: CacheEntry<Key>?) {
        guard configuration.countLimit != nil || configuration.totalCostLimit != nil, isOverLimits else { return }
        // Freed after `maintenance`: extents are a syscall each, and an entry's deinit runs
        // the key's deinit (user code).
        var garbage = Garbage<Key>()
        maintenance.withLock {
            while isOverLimits {
                guard evictOldest(excluding: protected, unpinnedOnly: false, into: &garbage) else { break }
            }
        }
        dispose(&garbage)
    }

    private var isOverLimits: Bool {
        if let limit = configuration.countLimit, totals.entryCount.load(ordering: .relaxed) > limit { return true }
        if let limit = configuration.totalCostLimit, totals.cost.load(ordering: .relaxed) > limit { return true }
        return false
    }

    /// Evicts the least recently used unpinned entry to make memory for an allocation.
    /// - Returns: False when there is nothing left to evict.
    func evictForMemory() -> Bool {
        var garbage = Garbage<Key>()
        let evicted = maintenance.withLock { evictOldest(excluding: nil, unpinnedOnly: true, into: &garbage) }
        dispose(&garbage)
        return evicted
    }

    /// Evicts the globally least recently used entry; the caller holds `maintenance`.
    /// - Returns: False when no entry may be evicted.
    private func evictOldest(excluding protected: CacheEntry<Key>?, unpinnedOnly: Bool, into garbage: inout Garbage<Key>) -> Bool {
        if isAdaptive { return evictLeastValuable(unpinnedOnly: unpinnedOnly, into: &garbage) }
        while true {
            // Stamps are read under their shard's lock (hits write them there).
            var best: (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? = nil
            let epoch = shards.epoch
            for index in shards.indices {
                let shard = shards[index]
                shard.pointee.state.withLock { state in
                    shard.drain(stripe: nil, in: &state, epoch: epoch)
                    let volatile = Self.oldest(in: state.volatile, excluding: protected)
                    let hot = state.oldestHot(limit: .max) { entry in
                        entry !== protected && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0)
                    }
                    let found: CacheEntry<Key>?
                    switch (volatile, hot) {
                    case (let volatile?, let hot?): found = volatile.stamp < hot.stamp ? volatile : hot
                    default: found = volatile ?? hot
                    }
                    if let found, best == nil || found.stamp < best!.stamp { best = (shard, found, found.stamp) }
                }
            }
            guard let best else { return false }
            if evict(best.entry, in: best.shard, unpinnedOnly: unpinnedOnly, into: &garbage) != nil { return true }
        }
    }

    /// The adaptive policy's eviction (see `VolatileCache+Segments.swift`): W-TinyLFU, so the
    /// entry just produced may go (it is turned away at the door if it is worth no more than its
    /// victim). The caller holds `maintenance`.
    /// - Returns: False when no entry may be evicted.
    private func evictLeastValuable(unpinnedOnly: Bool, into garbage: inout Garbage<Key>) -> Bool {
        let weight: PolicyWeight = configuration.totalCostLimit != nil ? .cost : (unpinnedOnly ? .footprint : .unit)
        var excess: Int? = nil
        if unpinnedOnly {
            // For memory: a page at a time.
        } else if let limit = configuration.totalCostLimit, totals.cost.load(ordering: .relaxed) > limit {
            excess = totals.cost.load(ordering: .relaxed) - limit
        } else if let limit = configuration.countLimit, totals.entryCount.load(ordering: .relaxed) > limit {
            excess = totals.entryCount.load(ordering: .relaxed) - limit
        }
        return evictBySegments(unpinnedOnly: unpinnedOnly, weight: weight, excess: excess, into: &garbage) != nil
    }

    /// Evicts the entry a scan chose, unless it changed since the scan (removed, claimed, or
    /// held when `unpinnedOnly`). Shared by the LRU scan and the adaptive segments.
    /// - Returns: Its footprint in bytes, or nil if it changed (the caller scans again).
    func evict(_ entry: CacheEntry<Key>, in shard: ShardPointer<Key>, unpinnedOnly: Bool, into garbage: inout Garbage<Key>) -> Int? {
        shard.pointee.state.withLock { state -> Int? in
            guard !entry.isRemoved, entry.list != .none,
                !unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0
            else { return nil }
            let footprint = entry.footprint
            detach(entry, from: &state, in: shard, into: &garbage)
            state.counters.evictions += 1
            return footprint
        }
    }

    /// The oldest entry of a volatile list that is not `protected` (under the shard lock).
    /// Volatile entries get no hits and no holds, so the list is in stamp order and any
    /// of them may go.
    private static func oldest(in list: EntryList<Key>, excluding protected: CacheEntry<Key>?) -> CacheEntry<Key>? {
        guard let oldest = list.oldest else { return nil }
        return oldest !== protected ? oldest : oldest.newer
    }
}
