// Limits: the total cost and the entry count, enforced after each insertion or regeneration
// by evicting the least recently used entries (hot or volatile, by stamp; the same recency
// policy as demotion, see `VolatileCache+HotSet.swift`). A pinned
// victim leaves the cache at once; its memory is freed when its last pin ends. The entry just
// produced is never the victim (NSCache on Linux evicts the object it just inserted).
extension VolatileCache {
    func enforceLimits(protecting protected: CacheEntry<Key>?) {
        guard configuration.countLimit != nil || configuration.totalCostLimit != nil, isOverLimits else { return }
        maintenance.withLock { _ in
            while isOverLimits {
                guard evictOldest(excluding: protected, unpinnedOnly: false) else { break }
            }
        }
    }

    private var isOverLimits: Bool {
        if let limit = configuration.countLimit, totals.entryCount.load(ordering: .relaxed) > limit { return true }
        if let limit = configuration.totalCostLimit, totals.cost.load(ordering: .relaxed) > limit { return true }
        return false
    }

    /// Evicts the least recently used unpinned entry to make memory for an allocation.
    /// - Returns: False when there is nothing left to evict.
    func evictForMemory() -> Bool {
        maintenance.withLock { _ in evictOldest(excluding: nil, unpinnedOnly: true) }
    }

    /// Evicts the globally least recently used entry; the caller holds `maintenance`.
    private func evictOldest(excluding protected: CacheEntry<Key>?, unpinnedOnly: Bool) -> Bool {
        while true {
            var best: (shard: ShardPointer<Key>, entry: CacheEntry<Key>)? = nil
            for shard in shards.all {
                let found = shard.pointee.state.withLock { state -> CacheEntry<Key>? in
                    let volatile = Self.oldest(in: state.volatile, excluding: protected, unpinnedOnly: unpinnedOnly)
                    let hot = state.oldestHot(limit: .max) { entry in
                        entry !== protected && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0)
                    }
                    guard let volatile else { return hot }
                    guard let hot else { return volatile }
                    return volatile.stamp < hot.stamp ? volatile : hot
                }
                if let found, best == nil || found.stamp < best!.entry.stamp { best = (shard, found) }
            }
            guard let best else { return false }
            var garbage = Garbage()
            let evicted = best.shard.pointee.state.withLock { state in
                let entry = best.entry
                guard !entry.isRemoved, entry.list != .none,
                    !unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0
                else { return false }
                detach(entry, from: &state, into: &garbage)
                state.counters.evictions += 1
                return true
            }
            garbage.dispose()
            if evicted { return true }
        }
    }

    /// The oldest entry of a volatile list (sorted by stamp: volatile entries get no hits)
    /// that may be evicted (under the shard lock).
    private static func oldest(
        in list: EntryList<Key>, excluding protected: CacheEntry<Key>?, unpinnedOnly: Bool
    ) -> CacheEntry<Key>? {
        var cursor = list.oldest
        while let entry = cursor {
            if entry !== protected && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0) { return entry }
            cursor = entry.newer
        }
        return nil
    }
}
