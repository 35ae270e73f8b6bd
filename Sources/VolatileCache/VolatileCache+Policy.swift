import Synchronization
import VolatileMemory

// The adaptive policy (`Configuration.policy = .adaptive`) in the cache: frequency per byte
// decides who goes first, over the whole resident set (hot and volatile entries).
//
// Frequency. Each shard keeps a count-min sketch (`FrequencySketch`, 4-bit aging counters)
// under its lock. Lock-free hot hits reach it through the read buffers: the drain that
// replays a stripe into the recency clock also counts each record's hash (no work on the hit
// path). Locked accesses (misses, volatile hits, counted holds) count in `lookup`. A key's
// counters live in its own shard, so there is no shared policy lock.
//
// Value of an entry = its estimated recent accesses / its weight (bytes for residency and
// demotion; cost or 1 under the cost and count limits): the static optimum keeps the entries
// with the most accesses per byte (a greedy knapsack). Ties go to the older stamp.
//
// Decisions (W-TinyLFU: window, probation and protected segments, see
// `VolatileCache+Segments.swift`):
// - demotion order (`nextDemotionVictim`): among each shard's oldest unheld hot entries,
//   probation (and candidates) first, then the window, protected last; within a segment the
//   least valuable. The kernel reclaims lazily freed pages oldest first, so this is also the
//   order of loss when the kernel, not the policy, decides; `shed()` uses the same order.
// - count and cost limits (`evictBySegments`): the window's oldest entry is a candidate,
//   compared with the oldest probation and protected entries; it gets in only if it is worth
//   strictly more per unit of weight (TinyLFU's admission: a one-time sweep of new keys
//   cannot push out the frequent ones).
// - resident capacity (`enforceResidentCapacity`): the policy, not the kernel, chooses what
//   leaves the resident set. The capacity is learned from the kernel: unknown (unbounded)
//   until a re-pin finds dropped pages; then the cache forgets its wholly dropped entries,
//   sets the capacity just below what is still resident, and evicts by the segments' rule
//   whenever hot + volatile bytes exceed it. Each eviction raises the capacity by
//   1/16 of the victim's bytes, so the cache probes upward until the kernel drops again
//   (additive increase, cut on loss; a cut is at most 1/16 of the capacity per drop, and
//   drops are acted on at most every `Residency.cutInterval`).
//
// Under `.lru` none of this runs: demotion and eviction take the least recently used entry.

/// The adaptive policy's resident capacity, learned from the kernel's drops.
final class Residency: Sendable {
    /// Hot plus volatile bytes the cache keeps; `Int.max` until the first drop.
    let capacity = Atomic<Int>(.max)
    /// When the last drop was acted on, in nanoseconds since `origin`.
    let lastCut = Atomic<Int64>(Int64.min / 2)
    /// Drops acted on (a statistic for tests and the demo).
    let cuts = Atomic<Int>(0)
    let origin = ContinuousClock.now

    /// A re-pin finds dropped pages many times per reclaim: act at most this often.
    static var cutInterval: Int64 { 250_000_000 }

    func nanoseconds() -> Int64 {
        let elapsed = ContinuousClock.now - origin
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }
}

/// An entry the policy weighs, with what it was weighed by (read under its shard lock).
struct PolicyCandidate<Key: Hashable & Sendable> {
    let shard: ShardPointer<Key>
    let entry: CacheEntry<Key>
    let stamp: UInt64
    let frequency: Int
    let weight: Int
    /// Loses ties (the entry just produced, under the limits).
    var isNewcomer = false
    /// Compared first, lower goes first (the demotion order's segment rank; 0 elsewhere).
    var rank = 0

    /// Whether this entry is worth less than `other`: a lower rank; then fewer accesses per
    /// unit of weight; on a tie the newcomer, then the older stamp.
    func isWorthLess(than other: PolicyCandidate) -> Bool {
        if rank != other.rank { return rank < other.rank }
        let lhs = Double(frequency) * Double(max(other.weight, 1))
        let rhs = Double(other.frequency) * Double(max(weight, 1))
        if lhs != rhs { return lhs < rhs }
        if isNewcomer != other.isNewcomer { return isNewcomer }
        return stamp < other.stamp
    }
}

/// How a victim's weight is measured.
enum PolicyWeight {
    /// Bytes (whole pages): residency and demotion.
    case footprint
    /// The entry's cost (the cost limit), or 1 each (the count limit only).
    case cost
    case unit

    func of<Key>(_ entry: CacheEntry<Key>) -> Int {
        switch self {
        case .footprint: return max(entry.footprint, 1)
        case .cost: return max(entry.cost, 1)
        case .unit: return 1
        }
    }
}

extension ShardState {
    /// The `count` least recently used hot entries that `isEligible` accepts (oldest first),
    /// re-placing the entries hit since they were placed as `oldestHot(limit:where:)` does.
    /// - Complexity: O(`count` + `limit`), amortized over the hits since the last call.
    mutating func oldestHot(count: Int, limit: Int, where isEligible: (CacheEntry<Key>) -> Bool) -> [CacheEntry<Key>] {
        var found: [CacheEntry<Key>] = []
        var cursor = hot.oldest
        var steps = 0
        while let entry = cursor, found.count < count, steps < limit {
            let next = entry.newer
            if entry.stamp != entry.listedStamp {
                hot.remove(entry)
                entry.listedStamp = entry.stamp
                hot.insertOrdered(entry)
                // It moved towards the head; the walk meets it again unless it landed behind `next`.
                cursor = next
                continue
            }
            if isEligible(entry) { found.append(entry) } else { steps += 1 }
            cursor = next
        }
        return found
    }

    /// Candidates of this shard for the policy: the `oldestVolatile` oldest and `newestVolatile`
    /// newest volatile entries and the `hotCount` oldest eligible hot entries.
    mutating func policyCandidates(
        shard: ShardPointer<Key>, oldestVolatile: Int, newestVolatile: Int, hotCount: Int, weight: PolicyWeight,
        hotEligible: (CacheEntry<Key>) -> Bool, into candidates: inout [PolicyCandidate<Key>]
    ) {
        func add(_ entry: CacheEntry<Key>) {
            candidates.append(PolicyCandidate(
                shard: shard, entry: entry, stamp: entry.stamp, frequency: recency.frequency(hash: HashedKey(entry.key).hash),
                weight: weight.of(entry), rank: entry.segment.demotionRank))
        }
        var taken = 0
        var cursor = volatile.oldest
        while let entry = cursor, taken < oldestVolatile {
            add(entry)
            taken += 1
            cursor = entry.newer
        }
        if volatile.count > oldestVolatile {
            var newest = volatile.newest
            var back = 0
            // Only the ones the first walk did not take.
            while let entry = newest, back < min(newestVolatile, volatile.count - oldestVolatile) {
                add(entry)
                back += 1
                newest = entry.older
            }
        }
        if hotCount > 0 {
            for entry in oldestHot(count: hotCount, limit: 64, where: hotEligible) { add(entry) }
        }
    }
}

extension VolatileCache {
    // MARK: - The demotion seam

    /// The next hot entry to demote: under ``CachePolicy/lru`` the least recently used
    /// unheld one; under ``CachePolicy/adaptive`` the least valuable (accesses per byte) among
    /// each shard's 8 oldest unheld ones. This decides the *order* of demotion; what the entry
    /// becomes (volatile or swappable) is decided where it is unpinned.
    /// - Returns: The shard, the entry and the stamp it was chosen with, or nil if every hot
    ///   entry is held.
    func nextDemotionVictim() -> (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? {
        let epoch = shards.epoch
        let unheld: (CacheEntry<Key>) -> Bool = { $0.holds.load(ordering: .relaxed) == 0 }
        if isAdaptive {
            var candidates: [PolicyCandidate<Key>] = []
            for index in 0..<shards.count {
                let shard = shards[index]
                shard.pointee.state.withLock { state in
                    shard.drain(stripe: nil, in: &state, epoch: epoch)
                    state.policyCandidates(
                        shard: shard, oldestVolatile: 0, newestVolatile: 0, hotCount: 8, weight: .footprint,
                        hotEligible: unheld, into: &candidates)
                }
            }
            guard let best = candidates.min(by: { $0.isWorthLess(than: $1) }) else { return nil }
            return (best.shard, best.entry, best.stamp)
        }
        // Hot lists never take an entry with an old stamp (an install and a revival stamp it
        // anew), so these floors never go stale.
        return oldestCandidate(by: demotionFloors) { state in
            // Pinned entries stay hot; look a little past them. The floor is read after
            // `oldestHot` re-placed the entries hit since they were listed.
            let entry = state.oldestHot(limit: 32, where: unheld)
            return (entry, state.stampFloor(includingVolatile: false))
        }
    }

    // MARK: - Resident capacity (adaptive)

    /// Bytes the cache counts as resident: hot plus volatile (dropped pages of volatile
    /// entries not yet accessed included).
    var bookedResidentBytes: Int {
        totals.hotBytes.load(ordering: .relaxed) + totals.volatileBytes.load(ordering: .relaxed)
    }

    /// The capacity learned so far (nil until the kernel first dropped something).
    package var learnedResidentCapacity: Int? {
        let capacity = residency.capacity.load(ordering: .relaxed)
        return capacity == .max ? nil : capacity
    }

    /// Evicts the least valuable unheld entries while hot plus volatile bytes exceed the
    /// learned capacity (adaptive only; nothing until the first drop).
    func enforceResidentCapacity() {
        guard isAdaptive, bookedResidentBytes > residency.capacity.load(ordering: .relaxed) else { return }
        var garbage = Garbage()
        maintenance.withLock {
            var attempts = 0
            while bookedResidentBytes > residency.capacity.load(ordering: .relaxed), attempts < 256 {
                attempts += 1
                guard let evicted = evictBySegments(
                    unpinnedOnly: true, weight: .footprint,
                    excess: bookedResidentBytes - residency.capacity.load(ordering: .relaxed), into: &garbage) else { break }
                if evicted > 0 { residency.capacity.add(evicted >> 4, ordering: .relaxed) }
            }
        }
        dispose(&garbage)
        // The arena keeps freed extents lazily freed for reuse: those pages are the newest
        // the kernel knows of, so it would take the older, valuable volatile entries first.
        // Give them back now: room made for the policy must be real room.
        arena.trimRecycledExtents()
    }

    /// A re-pin found pages the kernel dropped: the resident set is larger than the memory
    /// the cache may keep. Forgets the wholly dropped volatile entries, sets the capacity just
    /// below what is still resident, and evicts down to it (adaptive only; at most once per
    /// ``Residency/cutInterval``).
    func noteKernelDrop() {
        guard isAdaptive else { return }
        let now = residency.nanoseconds()
        let last = residency.lastCut.load(ordering: .relaxed)
        guard now - last >= Residency.cutInterval,
            residency.lastCut.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else { return }
        residency.cuts.add(1, ordering: .relaxed)
        var garbage = Garbage()
        // One mincore per volatile entry: it finds the wholly dropped ones and sums what is
        // still resident (this cache's entries only, not other users of the arena).
        var residentVolatilePages = 0
        for index in shards.indices {
            let shard = shards[index]
            shard.pointee.state.withLock { state in
                var cursor = state.volatile.oldest
                while let entry = cursor {
                    cursor = entry.newer
                    guard let resident = entry.volatile?.residentPageCount() else { continue }
                    residentVolatilePages += resident
                    guard resident == 0 else { continue }
                    state.counters.droppedObjects += 1
                    state.counters.droppedPages += entry.footprint / arena.pageSize
                    detach(entry, from: &state, in: shard, into: &garbage)
                }
            }
        }
        dispose(&garbage)
        // The kernel's reclaim has just made room, so what is left is below the real limit:
        // cut to it, but by at most 1/16 per drop (several drops in a row still converge on a
        // limit that really shrank, e.g. a neighbour's burst).
        let resident = totals.hotBytes.load(ordering: .relaxed) + residentVolatilePages * arena.pageSize
        let previous = residency.capacity.load(ordering: .relaxed)
        let floor = previous == .max ? 0 : previous - previous / 16
        residency.capacity.store(max(resident, floor, 1), ordering: .relaxed)
        enforceResidentCapacity()
    }
}
