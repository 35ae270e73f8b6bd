import VolatileMemory

// Regrouping by recency (issue 14): objects used recently end up together on pages the clock
// keeps pinned, and cold objects together on pages that become volatile as a whole.
//
// Why. A slab page stays pinned while any object on it is used. Objects are placed in order of
// insertion, so a hot set chosen by use (10 % of the objects, scattered at random) has a hot
// object on nearly every page: either the hot budget holds nearly every page (and the cold
// objects on them can never be reclaimed), or pages holding hot objects become volatile, every
// hit on them re-pins a page, and the kernel's reclaim of one page takes hot objects with it.
//
// What. Each page record keeps, beside the clock's reference bit, a word of bits: one per
// 64-byte unit of the page holding an object read during the page's window
// (`SmallPageRecord.accessed`; a hit sets it beside the epoch it reads anyway). A window spans
// a number of the shard's reads, twice the objects its pinned pages hold (`windowReads(for:)`),
// so that an object the budget keeps hot is read in it with high probability. At the end of a
// window, when the hot budget's hand passes the page (`enforceHotBudget`, which runs over
// budget only) or a read re-pins it, the bits are counted and a new window starts:
// - none: nothing changes (the clock unpins the page when it finds it unreferenced);
// - more than half of the units its live objects take: a hot page (it stays pinned);
// - some, at most half (a quarter below 16 objects, see `isMostlyCold`): the page is marked
//   draining, and at the hand made volatile now (so the budget makes the same progress as
//   before). A read of an object on a draining page (a hit takes the slow path: the record's
//   epoch reads 0 while draining; a volatile page is re-pinned as any) copies the object into
//   a slot of its class's fill page (the open page, a pinned page with free slots, or a new
//   page; never a draining one), points the entry there and frees the old slot. The objects
//   read since demotion thus leave, in the order they are read, for pages the clock keeps
//   pinned; the cold ones stay behind on a page that takes no new objects and stays volatile
//   until it is evicted, dropped or emptied.
// The window is counted in reads, not in passes of the hand: the hand moves whenever pins or
// new pages put the shard over its budget. With a window of one pass (and of four), pages of
// hot objects each read once per 2,000 reads showed few bits and were drained again and again
// (in the regrouping test: each hot object moved 11 times in 12 rounds, 645 of the 2,000 were
// on volatile pages at the end). With the window in reads: 1.4 moves each, 1 lost. Inserts set
// no object bits (only the new page's reference bit): objects inserted together and never read
// do not make a page look hot for a window.
//
// Why on the read and not at the hand. The hand knows slots, not keys: there is no map from a
// slot to its key (one would cost a key per slot, 8 to 16 bytes per entry, and a retain per
// insert for keys that hold references). The reader holds the key: a move costs one more
// dictionary write, on the slow path only. Objects not read again are not worth moving.
//
// Bounds. A move is one copy (at most 2 KiB), one dictionary update, one slot taken and one
// freed: O(1), at most one per read. The hand does the same steps as before (one popcount per
// pinned page visited at the end of its window). A draining page costs at most one extra pin
// per visit of the hand while objects are still read off it (the hand unpins a draining page
// it finds pinned: moves set no bits on it). Per entry the metadata is unchanged (the 12-byte
// slot in the dictionary); per page the record grows from 16 to 24 bytes. (A first version
// with a bit per 16 bytes had 56-byte records: 256-byte hits measured 1.46-1.61x the
// dictionary against 1.39-1.52x for the code before, in interleaved runs; with 24 bytes,
// 1.38-1.39x against 1.33-1.35x. A million 256-byte objects take 62,500 pages: their records
// take 1.5 MB instead of 3.5 MB, and a hit reads one at random.)
//
// Detection stays page-exact: a draining page is an ordinary slab page; an object is moved
// only once its page is pinned and intact, and only when no reader is counted on the page (a
// reader of an object above 256 bytes reads in place: the object then moves on a later read).
// A dropped draining page loses its objects as any page does.
//
// Limits. A draining page's freed slots are not reused (new objects would be mixed with cold
// ones again): the space comes back when the page empties, is evicted, or the kernel drops it.
// A scan over a draining page's objects moves each of them. Pages made volatile by `shed()`,
// or by the hand before the end of their window or with no object read in it, are not
// draining: a hit re-pins them whole as before, so objects inserted together and read
// together stay together at one pin per page. Cold objects read once are moved too (a read
// cannot tell a first read from the start of a hot spell). The thresholds (half, a quarter
// below 16 objects) and the window (twice the pinned objects, in reads) are judgement, checked
// on one workload (the test and `volatile-bench --only small`), not tuned over many.

extension SmallShard {
    /// Whether `page`, with `used` units of 64 bytes read during its window, holds mostly
    /// cold objects (then its used ones are moved as they are read): at most half the units
    /// its live objects take (its live objects, from 64-byte slots up), or at most a quarter
    /// when they are fewer than 16. With few objects a page of hot ones often shows half of
    /// them unread in a window by chance (two hot objects each read with probability 0.86 in
    /// a window: one of them unread a quarter of the time), and draining it would move them
    /// for nothing; a page of two objects is never drained.
    @inline(__always)
    static func isMostlyCold(used: Int, page: SlabPage) -> Bool {
        let units = min(page.liveCount, (page.liveCount * page.slotSize + 63) / 64)
        return units >= 16 ? used * 2 <= units : used * 4 <= units
    }

    /// Reads so far in this shard (hits on pinned and volatile pages), truncated: windows are
    /// measured in reads, not in passes of the hand.
    var readCount: UInt32 { UInt32(truncatingIfNeeded: figures.hotHits &+ figures.volatileHits) }

    /// The reads a page's window must span before its used objects are counted: twice the
    /// objects the pinned pages hold (estimated from the shard's share of pinned pages), so
    /// that an object the budget keeps hot is read in it with high probability; at least
    /// twice the page's slots.
    /// (Passes of the hand are no measure: see the comment at the top of this file.)
    func windowReads(for page: SlabPage) -> Int {
        let pagesHeld = pinnedPages + volatilePages
        let pinnedObjects = pagesHeld == 0 ? 0 : figures.objectCount * pinnedPages / pagesHeld
        return max(2 * page.slotCount, 2 * pinnedObjects)
    }

    /// At the end of page `index`'s window (see ``windowReads(for:)``): counts the objects
    /// read in it, starts a new window, and marks the page draining if a few were read and
    /// most were not. A page no object was read on is left to the clock, as before.
    /// - Returns: Whether the page is now draining.
    mutating func drainIfMostlyCold(_ index: Int, _ page: SlabPage) -> Bool {
        guard !page.isDraining else { return false }
        let record = hot.records + index
        let now = readCount
        guard Int(now &- page.windowStart) >= windowReads(for: page) else { return false }
        let used = record.pointee.accessedCount
        page.windowStart = now
        record.pointee.accessed = 0
        guard used != 0 && Self.isMostlyCold(used: used, page: page) else { return false }
        page.isDraining = true
        record.pointee.referenced = false
        syncHot(index)
        figures.drainedPages += 1
        return true
    }

    /// Moves the object of `key` off draining page `index` into a slot of the fill page of its
    /// class, and marks it accessed there. Call under the shard lock, with the page pinned
    /// and no reader counted on it.
    /// - Returns: The page it is on now and its new slot, or nil when no slot could be had
    ///   (the object stays where it is).
    mutating func relocate(
        _ key: Key, _ slot: SmallSlot, from page: SlabPage, at index: Int, arena: VolatileArena,
        garbage: inout [SlabPage]
    ) -> (SlabPage, SmallSlot)? {
        let taken: (UInt32, Int)
        do { taken = try takeSlot(sizeClass: page.sizeClass, arena: arena) } catch { return nil }
        let (targetIndex, targetSlot) = taken
        let target = pages[Int(targetIndex)].unsafelyUnwrapped
        let count = Int(slot.byteCount)
        let offset = targetSlot * target.slotSize
        (target.base + offset).copyMemory(from: page.base + Int(slot.offset), byteCount: count)
        target.liveBytes += count
        SmallPageRecord.markAccessed(hot.records + Int(targetIndex), offset: offset)
        let moved = SmallSlot(page: targetIndex, epoch: target.epoch, offset: UInt16(offset), byteCount: slot.byteCount)
        entries[key] = moved
        page.freeSlot(Int(slot.offset) / page.slotSize)
        page.liveBytes -= count
        figures.relocatedObjects += 1
        if page.liveCount == 0 { remove(pageAt: index, garbage: &garbage) }
        return (target, moved)
    }
}

extension SmallObjectCache {
    /// The slab pages holding the objects of `keys` (absent keys and objects of dropped pages
    /// are skipped), and how many of those pages are pinned. For the package's tests and
    /// benchmarks: it measures how well recency grouping packed a hot set.
    /// - Parameter keys: The keys.
    /// - Returns: The number of distinct pages, and of pinned ones among them.
    /// - Complexity: O(keys), one lock per key.
    package func pages(holding keys: some Sequence<Key>) -> (pages: Int, pinned: Int) {
        var seen = Set<UInt64>()
        var pinned = 0
        for key in keys {
            let shard = shard(for: key)
            let shardIndex = UInt64((UnsafeRawPointer(shard.state) - UnsafeRawPointer(shards.states)) / MemoryLayout<SmallShard<Key>>.stride)
            let found = shard.withLock { state -> (UInt32, Bool)? in
                guard let slot = state.entries[key], let page = state.pages[Int(slot.page)], page.epoch == slot.epoch else { return nil }
                return (slot.page, page.isPinned)
            }
            guard let (page, isPinned) = found, seen.insert(shardIndex << 32 | UInt64(page)).inserted else { continue }
            if isPinned { pinned += 1 }
        }
        return (seen.count, pinned)
    }
}
