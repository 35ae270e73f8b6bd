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
// transitions reset the shard's eviction floor to 0 (unknown), under the shard lock that the
// scan also writes the floor under, and the next pass scans the shard again. LRU demotion
// (`nextDemotionVictim()`) uses the same scan with floors of the hot lists only, which never
// go stale: an install and a revival stamp the entry anew.

/// Per shard, a floor of its stamps (0: unknown, scan it). Written only under the shard's
/// lock, read without it: any floor ever written stays a lower bound until a reset, so a
/// reader that sees an older one still chooses right.
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

extension ShardState {
    /// The shard's floor for a scan: the lowest stamp among its hot entries (their listed
    /// stamps) and, with `volatile`, its volatile ones; with none, the clock (a new entry's
    /// stamp is above it). Every listed entry counts, also the ones a scan may not take
    /// (protected, held): they may be candidates of a later scan.
    func stampFloor(includingVolatile volatile: Bool) -> UInt64 {
        Swift.min(hot.oldest?.listedStamp ?? .max, volatile ? self.volatile.oldest?.stamp ?? .max : .max, recency.clock)
    }
}

extension VolatileCache {
    /// The shards' oldest candidate, visiting shards in the order of `floors` until no
    /// unvisited shard can hold an older one (see the file comment).
    /// - Parameter candidate: Called under the visited shard's lock, after its read buffer
    ///   is drained: the shard's candidate (or nil) and its new floor.
    /// - Returns: The oldest candidate, or nil if no shard has one.
    func oldestCandidate(
        by floors: ShardFloors, _ candidate: (inout ShardState<Key>) -> (entry: CacheEntry<Key>?, floor: UInt64)
    ) -> (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? {
        let epoch = shards.epoch
        var visited = [Bool](repeating: false, count: shards.count)
        var best: (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? = nil
        while true {
            var next = -1
            var lowestFloor = UInt64.max
            for index in shards.indices where !visited[index] {
                let floor = floors[index]
                if floor < lowestFloor {
                    lowestFloor = floor
                    next = index
                }
            }
            if let best, best.stamp <= lowestFloor { return best }
            guard next >= 0 else { return best }
            visited[next] = true
            let shard = shards[next]
            // Stamps are read under their shard's lock (drains write them there).
            shard.pointee.state.withLock { state in
                shard.drain(stripe: nil, in: &state, epoch: epoch)
                let found = candidate(&state)
                floors[next] = found.floor
                if let entry = found.entry, best == nil || entry.stamp < best!.stamp { best = (shard, entry, entry.stamp) }
            }
        }
    }
    /// Evicts least recently used entries until the cache fits its count and cost limits.
    /// - Parameter protected: The entry just produced, which is never the victim.
    /// - Complexity: Under LRU, one or two shard scans per eviction in the usual case (see the
    ///   file comment), at most one per shard.
    func enforceLimits(protecting protected: CacheEntry<Key>?) {
        guard configuration.countLimit != nil || configuration.totalCostLimit != nil, isOverLimits else { return }
        // Freed after `maintenance`: extents are a syscall each, and an entry's deinit runs
        // the key's deinit (user code).
        var garbage = Garbage()
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
        var garbage = Garbage()
        let evicted = maintenance.withLock { evictOldest(excluding: nil, unpinnedOnly: true, into: &garbage) }
        dispose(&garbage)
        return evicted
    }

    /// Marks a shard's eviction floor unknown: an entry went back into one of its lists with
    /// an older stamp (see the file comment). Call under the shard's lock.
    func markEvictionFloorStale(_ shard: ShardPointer<Key>) {
        evictionFloors[shards.index(of: shard)] = 0
    }

    /// Evicts the globally least recently used entry (see `oldestCandidate(by:_:)`); the
    /// caller holds `maintenance`.
    /// - Returns: False when no entry may be evicted.
    private func evictOldest(excluding protected: CacheEntry<Key>?, unpinnedOnly: Bool, into garbage: inout Garbage) -> Bool {
        if isAdaptive { return evictLeastValuable(unpinnedOnly: unpinnedOnly, into: &garbage) }
        while true {
            let best = oldestCandidate(by: evictionFloors) { state in
                let volatile = Self.oldest(in: state.volatile, excluding: protected)
                let hot = state.oldestHot(limit: .max) { entry in
                    entry !== protected && (!unpinnedOnly || entry.holds.load(ordering: .acquiring) == 0)
                }
                let found: CacheEntry<Key>?
                switch (volatile, hot) {
                case (let volatile?, let hot?): found = volatile.stamp < hot.stamp ? volatile : hot
                default: found = volatile ?? hot
                }
                return (found, state.stampFloor(includingVolatile: true))
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
