import Synchronization

// Limits: the total cost and the entry count, enforced after each insertion or regeneration
// by evicting the least recently used entries (hot or volatile, by stamp; the same recency
// policy as demotion, see `VolatileCache+HotSet.swift`). A pinned
// victim leaves the cache at once; its memory is freed when its last pin ends. The entry just
// produced is never the victim (NSCache on Linux evicts the object it just inserted).
//
// Finding the oldest entry without visiting every shard. A shard's oldest stamp only rises:
// stamps come from the shard's clock, so a new entry is newer than every entry there, a hit
// or a drain only raises a stamp, and a removal only takes entries away. So a shard's oldest
// stamp seen at one scan stays a lower bound (its floor) until the shard is scanned again.
// The LRU eviction keeps the floors between passes and scans (drains, then reads its oldest
// hot and volatile entry) the shard with the lowest floor first; once the oldest candidate
// found so far is no newer than every unscanned shard's floor, it is the oldest of the cache,
// as a scan of every shard would have found it. Under churn that is one or two shard scans an
// eviction instead of 16 (each a lock, a drain, and generic-metadata look-ups in unspecialized
// code: `volatile-bench --churn-child 1 1` under callgrind, 16 scans were ~37 % of a miss).
// The one exception to "only rises": an entry that was out of every list while it was being
// demoted goes back in with its old stamp (`finishUnpin`, `finishKeepingSwappable`); those
// transitions mark the shard's floor stale (`Totals.staleEvictionFloors`), and the next
// pass scans it again.

/// The LRU eviction scan's floors, kept between passes under `maintenance`.
struct EvictionFloors {
    /// Per shard, a lower bound of its entries' stamps (0: unknown, scan it).
    var floors: [UInt64]

    init(shardCount: Int) { floors = [UInt64](repeating: 0, count: shardCount) }
}

/// Per shard, a stamp floor that threads without a common lock read and write (the LRU
/// demotion scan's, see `nextDemotionVictim()`). Relaxed: any floor ever computed stays a
/// lower bound, so a racing writer's older, lower value is still a correct one.
final class ShardFloors: @unchecked Sendable {  // Atomics only.
    private let values: UnsafeMutablePointer<Atomic<UInt64>>
    let count: Int

    init(count: Int) {
        self.count = count
        values = .allocate(capacity: count)
        for index in 0..<count { (values + index).initialize(to: Atomic(0)) }
    }

    deinit {
        values.deinitialize(count: count)
        values.deallocate()
    }

    subscript(index: Int) -> UInt64 {
        get { values[index].load(ordering: .relaxed) }
        set { values[index].store(newValue, ordering: .relaxed) }
    }
}

extension VolatileCache {
    /// Evicts least recently used entries until the cache fits its count and cost limits.
    /// - Parameter protected: The entry just produced, which is never the victim.
    /// - Complexity: Under LRU, one or two shard scans per eviction in the usual case (see the
    ///   file comment), at most one per shard.
    func enforceLimits(protecting protected: CacheEntry<Key>?) {
        guard configuration.countLimit != nil || configuration.totalCostLimit != nil, isOverLimits else { return }
        // Freed after `maintenance`: extents are a syscall each, and an entry's deinit runs
        // the key's deinit (user code).
        var garbage = Garbage()
        maintenance.withLock { scan in
            while isOverLimits {
                guard evictOldest(excluding: protected, unpinnedOnly: false, scan: &scan, into: &garbage) else { break }
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
        var garbage = Garbage()
        let evicted = maintenance.withLock { scan in evictOldest(excluding: nil, unpinnedOnly: true, scan: &scan, into: &garbage) }
        dispose(&garbage)
        return evicted
    }

    /// Marks a shard's eviction floor stale: an entry went back into one of its lists with
    /// an older stamp (see the file comment).
    func markEvictionFloorStale(_ shard: ShardPointer<Key>) {
        totals.staleEvictionFloors.bitwiseOr(1 << UInt64(shards.index(of: shard) & 63), ordering: .relaxed)
    }

    /// Evicts the globally least recently used entry, scanning shards in the order of their
    /// floors (see the file comment); the caller holds `maintenance`.
    /// - Returns: False when no entry may be evicted.
    private func evictOldest(
        excluding protected: CacheEntry<Key>?, unpinnedOnly: Bool, scan: inout EvictionFloors, into garbage: inout Garbage
    ) -> Bool {
        if isAdaptive { return evictLeastValuable(unpinnedOnly: unpinnedOnly, into: &garbage) }
        let stale = totals.staleEvictionFloors.exchange(0, ordering: .relaxed)
        if stale != 0 {
            for index in shards.indices where stale & (1 << UInt64(index & 63)) != 0 { scan.floors[index] = 0 }
        }
        let epoch = shards.epoch
        while true {
            // Shards scanned in this attempt (a scan's candidate is exact until the next
            // attempt), and the oldest candidate they hold.
            var scanned = [Bool](repeating: false, count: shards.count)
            var best: (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? = nil
            while true {
                var next = -1
                var lowestFloor = UInt64.max
                for index in shards.indices where !scanned[index] && scan.floors[index] < lowestFloor {
                    lowestFloor = scan.floors[index]
                    next = index
                }
                if let best, best.stamp <= lowestFloor { break }
                guard next >= 0 else { break }
                scanned[next] = true
                let shard = shards[next]
                // Stamps are read under their shard's lock (drains write them there).
                shard.pointee.state.withLock { state in
                    shard.drain(stripe: nil, in: &state, epoch: epoch)
                    let volatile = Self.oldest(in: state.volatile, excluding: protected)
                    let hot = state.oldestHot(limit: .max) { entry in
                        entry !== protected && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0)
                    }
                    // The floor counts every listed entry, the protected and the held ones too:
                    // they may be candidates of a later pass. An empty shard's next stamp is
                    // above its clock.
                    scan.floors[next] = Swift.min(
                        state.hot.oldest?.listedStamp ?? .max, state.volatile.oldest?.stamp ?? .max, state.recency.clock)
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
    private func evictLeastValuable(unpinnedOnly: Bool, into garbage: inout Garbage) -> Bool {
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
    func evict(_ entry: CacheEntry<Key>, in shard: ShardPointer<Key>, unpinnedOnly: Bool, into garbage: inout Garbage) -> Int? {
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
