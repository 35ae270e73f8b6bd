import VolatileMemory

// The hot set: unpinned entries stay pinned (ordinary memory) while their bytes fit the hot
// budget; the least recently used beyond it (under the adaptive policy: the least valuable
// of the oldest, see `VolatileCache+Policy.swift`) are demoted to volatile.
//
// Recency policy (see `VolatileCache+Shards.swift` for the clock): a hit only writes its
// read-buffer stripe, which drains replay into stamps (lossy, see `VolatileCache+HotIndex.swift`). Each shard's hot list is sorted by the stamp an entry had when it was
// placed; a demotion pass re-places the entries hit since then as it meets them at the tail,
// so the victim it picks in a shard is that shard's exact least recently used unpinned
// entry. Across shards it takes the smallest of the shards' candidates' stamps, which is
// exact up to the clock's cross-shard slack (about 64 hits of one shard); it scans the shards
// in the order of their floors (lower bounds of their oldest stamps, kept between passes) and
// stops once no unscanned shard can hold an older entry, as the LRU eviction does (see
// `VolatileCache+Eviction.swift`): about 2 shard scans a demotion instead of 16.
//
// Who demotes: whichever thread sees the hot bytes over budget after an install or a release
// demotes until they fit, itself (no pass is skipped because another thread runs one): with
// many threads installing, each pays for its own excess and the hot set cannot run away.
// A claimed entry is unpublished from the hot index at once (`demoting`); its unpin
// (MADV_FREE) waits for a grace period, so a lock-free reader still in its body keeps intact
// bytes, and runs outside the shard lock (the entry is `busy` then and its accessors wait on
// its flight). A locked look-up of a `demoting` entry revives it. Hits never wait for a
// demotion pass.
extension VolatileCache {
    /// Demotes every unpinned hot entry to volatile now, as a memory-pressure monitor does,
    /// and returns the arena's recycled extents to the kernel: the kernel may then take the
    /// demoted pages back. Hits on other entries are not blocked.
    /// - Returns: The bytes demoted.
    /// - Complexity: O(hot entries × shards), one `MADV_FREE` per entry.
    @discardableResult
    public func shed() -> Int {
        let bytes = demote(toBudget: 0, shedding: true)
        totals.sheds.add(1, ordering: .relaxed)
        totals.shedBytes.add(bytes, ordering: .relaxed)
        arena.trimRecycledExtents()
        return bytes
    }

    /// Demotes least recently used hot entries until the hot bytes fit the budget. Runs on
    /// the thread that found the budget exceeded; concurrent callers each demote (their
    /// candidates are claimed under the shard lock, so no entry is demoted twice).
    @usableFromInline
    func enforceHotBudget() {
        _ = demote(toBudget: hotByteLimit, shedding: false)
    }

    /// Demotion loop. Stops when the hot bytes fit or every hot entry is pinned.
    func demote(toBudget budget: Int, shedding: Bool) -> Int {
        var demoted = 0
        var contended = 0
        while totals.hotBytes.load(ordering: .relaxed) > budget {
            guard let bytes = demoteOldestHot(shedding: shedding) else { break }
            if bytes == 0 {
                // Another thread took the candidate (or hit it): look again, but do not spin.
                contended += 1
                if contended > 64 { break }
                continue
            }
            demoted += bytes
        }
        return demoted
    }

    /// Demotes the next victim of the policy (see `nextDemotionVictim()`): claims it
    /// (unpublished, `demoting`) now; its unpin runs after a grace period.
    /// - Returns: Its bytes (0 if the candidate changed under us), or nil if there is none.
    private func demoteOldestHot(shedding: Bool) -> Int? {
        guard let best = nextDemotionVictim() else { return nil }
        let entry = best.entry
        // Claim it under the lock: counted holds are only added under this lock, so an
        // unheld entry stays unheld until it is `demoting`.
        var garbage = Garbage()
        let footprint: Int = best.shard.pointee.state.withLock { state in
            guard entry.phase == .hot, entry.list == .hot, !entry.isRemoved, entry.stamp == best.stamp,
                entry.holds.load(ordering: .acquiring) == 0
            else { return 0 }
            let ticket = entry.claimForDemotion(in: &state, index: best.shard, garbage: &garbage)
            garbage.retired.append(.demotion(entry, ticket: ticket, shard: UnsafeMutableRawPointer(best.shard.address), shedding: shedding))
            totals.hotBytes.subtract(entry.footprint, ordering: .relaxed)
            return entry.footprint
        }
        dispose(&garbage)
        return footprint
    }
}
