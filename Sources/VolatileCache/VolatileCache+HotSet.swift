import VolatileMemory

// The hot set: unpinned entries stay pinned (ordinary memory) while their bytes fit the hot
// budget; the least recently used beyond it are demoted to volatile. LRU is exact within a
// shard (an intrusive list, newest first) and global across shards by the access-clock stamp:
// a demotion pass takes the shard tail with the smallest stamp. The unpin (MADV_FREE) runs
// outside the shard lock; meanwhile the entry is `busy` and its accessors wait on its flight.
extension VolatileCache {
    /// Demotes every unpinned hot entry to volatile now, as a memory-pressure monitor does:
    /// the kernel may then take their pages back. Hits on other entries are not blocked.
    /// - Returns: The bytes demoted.
    /// - Complexity: O(hot entries × shards), one `MADV_FREE` per entry.
    @discardableResult
    public func shed() -> Int {
        maintenance.withLock { _ in demote(toBudget: 0) }
    }

    /// Demotes least recently used hot entries until the hot bytes fit `budget`. Skips the
    /// pass when another thread is already running one (it will get there), so that no
    /// reader ever waits for it.
    @usableFromInline
    func enforceHotBudget(_ budget: Int) {
        _ = maintenance.withLockIfAvailable { _ in demote(toBudget: budget) }
    }

    /// Demotion loop; the caller holds `maintenance`.
    func demote(toBudget budget: Int) -> Int {
        var demoted = 0
        while totals.hotBytes.load(ordering: .relaxed) > budget {
            guard let bytes = demoteOldestHot() else { break }
            demoted += bytes
        }
        return demoted
    }

    /// Demotes the globally least recently used unpinned hot entry.
    /// - Returns: Its bytes (0 if the candidate changed under us), or nil if there is none.
    private func demoteOldestHot() -> Int? {
        var best: (shard: CacheShard<Key>, entry: CacheEntry<Key>, stamp: UInt64)? = nil
        for shard in shards {
            shard.state.withLock { state in
                // Pinned entries stay hot; look a little past them.
                var cursor = state.hot.oldest
                var steps = 0
                while let entry = cursor, steps < 32 {
                    if entry.holds.load(ordering: .acquiring) == 0 {
                        if best == nil || entry.stamp < best!.stamp { best = (shard, entry, entry.stamp) }
                        return
                    }
                    cursor = entry.newer
                    steps += 1
                }
            }
        }
        guard let best else { return nil }
        let entry = best.entry
        // Take the extent out under the lock, re-checking that nothing changed.
        let flight = Flight()
        let taken: PinnedExtent? = best.shard.state.withLock { state in
            guard entry.phase == .hot, entry.list == .hot, !entry.isRemoved, entry.stamp == best.stamp,
                entry.holds.load(ordering: .acquiring) == 0, let extent = entry.pinned.take()
            else { return nil }
            state.hot.remove(entry)
            entry.list = .none
            entry.phase = .busy
            entry.flight = flight
            state.busyCount += 1
            totals.hotBytes.subtract(entry.footprint, ordering: .relaxed)
            return extent
        }
        guard let extent = taken else { return 0 }
        // The entry is busy: only this thread touches its extent fields until the lock below.
        entry.volatile = extent.unpin()
        var garbage = Garbage()
        best.shard.state.withLock { state in
            entry.flight = nil
            if entry.isRemoved {
                if let volatile = entry.volatile.take() { garbage.add(volatile) }
                return
            }
            state.busyCount -= 1
            entry.phase = .volatile
            entry.list = .volatile
            state.volatile.insertOrdered(entry)
            state.counters.demotions += 1
            totals.volatileBytes.add(entry.footprint, ordering: .relaxed)
        }
        garbage.dispose()
        flight.finish(.ready)
        return entry.footprint
    }
}
