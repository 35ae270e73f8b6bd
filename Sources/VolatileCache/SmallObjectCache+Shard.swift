public import Synchronization
public import VolatileMemory
#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
public import Musl
#endif

/// One shard of a ``SmallObjectCache``: its keys, its slab pages, and the clock that picks
/// which pinned pages become volatile. Everything here runs under the shard's lock.
@usableFromInline
struct SmallShard<Key: Hashable & Sendable> {
    @usableFromInline var entries: [Key: SmallSlot] = [:]
    /// Slab pages by index (an entry's `page`); nil where a page was given back.
    @usableFromInline var pages: [SlabPage?] = []
    /// Per page index, what a hit reads instead of the page object (which would be a cache
    /// miss of its own): epoch while pinned, first byte, the clock's reference bit.
    @usableFromInline let hot = SmallPageTable()
    var freeIndices: [UInt32] = []
    /// The page each size class fills with new objects (index), or -1.
    var open = [Int](repeating: -1, count: SlabSizeClass.slotSizes.count)
    /// Pinned pages with free slots, per size class (may hold stale indices: checked on use).
    var partial = [[UInt32]](repeating: [], count: SlabSizeClass.slotSizes.count)
    /// Pages taken out of use (by `removeAll`) while a reader was on them.
    var orphans: [SlabPage] = []
    var pinnedPages = 0
    var volatilePages = 0
    var clockHand = 0
    var nextEpoch: UInt32 = 1
    /// The shard's figures: its event counts, and the bytes of its live objects and of the
    /// slots they take (`statistics` adds the entry and page counts).
    @usableFromInline var figures = SmallObjectCache<Key>.Statistics()

    @usableFromInline init() {}

    /// The hit on a pinned page, inlined into the caller. An object of at most `capacity`
    /// bytes is copied to `scratch` (a copy is cheaper than counting a reader on its page:
    /// no atomic and no page object to load, and the page may become volatile at once); a
    /// larger one gets a reader counted.
    @inlinable @inline(__always)
    mutating func hotRead(_ key: Key, copyInto scratch: UnsafeMutableRawPointer, capacity: Int) -> SmallHotRead {
        guard let slot = entries[key] else { return .notHot }
        let index = Int(slot.page)
        let record = hot.records + index
        // Epoch 0 (never a slot's) while the page is volatile or gone.
        guard record.pointee.epoch == slot.epoch else { return .notHot }
        figures.hotHits += 1
        SmallPageRecord.markAccessed(record, offset: Int(slot.offset))
        let count = Int(slot.byteCount)
        let address = UnsafeRawPointer(record.pointee.base.unsafelyUnwrapped + Int(slot.offset))
        if count <= capacity {
            SmallPageTable.copySlot(from: address, to: scratch, count: count)
            return .copied(count)
        }
        let page = pages[index].unsafelyUnwrapped
        page.readers.add(1, ordering: .acquiring)
        return .counted(page, UnsafeRawBufferPointer(start: address, count: count))
    }

    /// Copies an object into a free slot of its class.
    /// - Returns: Where it is.
    @usableFromInline
    mutating func place(_ bytes: UnsafeRawBufferPointer, sizeClass: Int, arena: VolatileArena) throws(VolatileCacheError) -> SmallSlot {
        let (index, slot) = try takeSlot(sizeClass: sizeClass, arena: arena)
        let page = pages[Int(index)].unsafelyUnwrapped
        page.address(ofSlot: slot).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        page.liveBytes += bytes.count
        figures.objectCount += 1
        figures.objectBytes += bytes.count
        figures.slotBytes += page.slotSize
        return SmallSlot(page: index, epoch: page.epoch, offset: UInt16(slot * page.slotSize), byteCount: UInt16(bytes.count))
    }

    /// A free slot in a pinned page of the class: the open page, a partial page, or a new one.
    /// - Returns: The page index and the slot.
    mutating func takeSlot(sizeClass: Int, arena: VolatileArena) throws(VolatileCacheError) -> (UInt32, Int) {
        let current = open[sizeClass]
        if current >= 0, let page = pages[current], page.isPinned, let slot = page.allocateSlot() {
            return (UInt32(current), slot)
        }
        if current >= 0 { pages[current]?.isOpen = false }
        open[sizeClass] = -1
        while let index = partial[sizeClass].popLast() {
            guard let page = pages[Int(index)] else { continue }
            page.isListedPartial = false
            guard page.isPinned, !page.isDraining, page.sizeClass == sizeClass, let slot = page.allocateSlot() else { continue }
            open[sizeClass] = Int(index)
            page.isOpen = true
            return (index, slot)
        }
        let page: SlabPage
        do {
            page = try SlabPage(arena: arena, sizeClass: sizeClass, epoch: takeEpoch())
        } catch {
            throw .memoryUnavailable(error)
        }
        let index: Int
        if let reused = freeIndices.popLast() {
            index = Int(reused)
            pages[index] = page
        } else {
            index = pages.count
            pages.append(page)
            hot.append()
        }
        hot.records[index].referenced = true
        page.windowStart = readCount
        syncHot(index)
        pinnedPages += 1
        page.isOpen = true
        open[sizeClass] = index
        return (UInt32(index), page.allocateSlot()!)
    }

    mutating func takeEpoch() -> UInt32 {
        defer { nextEpoch = nextEpoch == .max ? 1 : nextEpoch + 1 }  // 0 means "not pinned" in `hot`
        return nextEpoch
    }

    /// Refreshes what hits read about page `index` after its state changed.
    mutating func syncHot(_ index: Int) {
        let page = pages[index]
        // A draining page reads as not pinned: its hits take the slow path, which moves them.
        hot.records[index].epoch = page.map { $0.isPinned && !$0.isDraining ? $0.epoch : 0 } ?? 0
        hot.records[index].base = page?.base
        if page == nil { hot.records[index].clearAccessed() }
    }

    /// Gives back the slot of an entry taken out of the dictionary (nothing if its page
    /// was dropped since). An empty page no reader is on goes to `garbage`.
    @usableFromInline
    mutating func forget(_ slot: SmallSlot, garbage: inout [SlabPage]) {
        let index = Int(slot.page)
        guard let page = pages[index], page.epoch == slot.epoch else { return }
        page.freeSlot(Int(slot.offset) / page.slotSize)
        page.liveBytes -= Int(slot.byteCount)
        hot.records[index].clearAccessed(offset: Int(slot.offset), slotSize: page.slotSize)
        figures.objectCount -= 1
        figures.objectBytes -= Int(slot.byteCount)
        figures.slotBytes -= page.slotSize
        if page.liveCount == 0 && !page.isOpen && page.readers.load(ordering: .acquiring) == 0 {
            remove(pageAt: index, garbage: &garbage)
        } else if page.isPinned && !page.isListedPartial && !page.isOpen && !page.isDraining {
            page.isListedPartial = true
            partial[page.sizeClass].append(UInt32(index))
        }
    }

    /// Takes a page out of the table (its slots hold no live object, or an eviction gives
    /// them up: their entries then carry an epoch no page has).
    mutating func remove(pageAt index: Int, garbage: inout [SlabPage]) {
        guard let page = pages[index] else { return }
        if page.isPinned { pinnedPages -= 1 } else { volatilePages -= 1 }
        if open[page.sizeClass] == index { open[page.sizeClass] = -1 }
        pages[index] = nil
        syncHot(index)
        freeIndices.append(UInt32(index))
        garbage.append(page)
    }

    /// Looks the key up for a read: re-pins its page if volatile, marks the object read and
    /// counts a reader on its page (the caller decrements `readers` when done). An object on a
    /// draining page is first moved to the fill page (`relocate`), and the reader counted there.
    /// - Returns: The page and the object's bytes, or nil when absent or dropped (a dropped
    ///   entry is removed).
    @usableFromInline
    mutating func beginRead(
        _ key: Key, regroup: Bool, arena: VolatileArena, garbage: inout [SlabPage]
    ) throws(VolatileCacheError) -> (SlabPage, UnsafeRawBufferPointer)? {
        guard let slot = entries[key] else {
            figures.misses += 1
            return nil
        }
        let index = Int(slot.page)
        guard let page = pages[index], page.epoch == slot.epoch else {
            entries[key] = nil
            figures.misses += 1
            return nil
        }
        if !page.isPinned {
            let (lostObjects, lostBytes) = (page.liveCount, page.liveBytes)
            let result: SlabPage.PinResult
            do {
                result = try page.pin(nextEpoch: takeEpoch())
            } catch {
                lose(page, at: index, objects: lostObjects, bytes: lostBytes, garbage: &garbage)
                entries[key] = nil
                throw .memoryUnavailable(error)
            }
            volatilePages -= 1
            pinnedPages += 1
            figures.pagePins += 1
            syncHot(index)
            if result == .dropped {
                figures.droppedPages += 1
                lose(page, at: index, objects: lostObjects, bytes: lostBytes, garbage: &garbage)
                entries[key] = nil
                figures.misses += 1
                return nil
            }
            figures.volatileHits += 1
            // A page that was volatile may have been pinned for a few of its objects only.
            if regroup { _ = drainIfMostlyCold(index, page) }
            if page.hasFreeSlot && !page.isListedPartial && !page.isOpen && !page.isDraining {
                page.isListedPartial = true
                partial[page.sizeClass].append(UInt32(index))
            }
        } else {
            figures.hotHits += 1
        }
        if page.isDraining && regroup && page.readers.load(ordering: .acquiring) == 0,
            let (target, moved) = relocate(key, slot, from: page, at: index, arena: arena, garbage: &garbage)
        {
            target.readers.add(1, ordering: .acquiring)
            return (target, UnsafeRawBufferPointer(start: target.base + Int(moved.offset), count: Int(moved.byteCount)))
        }
        if !page.isDraining { SmallPageRecord.markAccessed(hot.records + index, offset: Int(slot.offset)) }
        page.readers.add(1, ordering: .acquiring)
        return (page, UnsafeRawBufferPointer(start: page.base + Int(slot.offset), count: Int(slot.byteCount)))
    }

    /// A page whose objects are gone (dropped, or its pin failed): off the totals and out of
    /// the table (their entries go when they are accessed).
    private mutating func lose(_ page: SlabPage, at index: Int, objects: Int, bytes: Int, garbage: inout [SlabPage]) {
        figures.droppedObjects += objects
        figures.objectCount -= objects
        figures.objectBytes -= bytes
        figures.slotBytes -= objects * page.slotSize
        remove(pageAt: index, garbage: &garbage)
    }

    /// Evicts whole slab pages while the shard holds more objects or bytes than `limits`
    /// allow, down to seven eighths of them, so that evictions come in bulk and their pages
    /// are freed together (coalesced by the caller). The clock picks the pages: a volatile one
    /// at once, a pinned one if not used since the hand last passed. Pages being read or
    /// filled are skipped (a shard may exceed its limits by the objects of its open pages).
    /// Entries of evicted pages become stale (their page epoch is gone); when they outnumber
    /// the live ones, they are swept out of the dictionary.
    /// - Complexity: O(pages) per eviction, O(entries) per sweep.
    @usableFromInline
    mutating func enforceLimits(_ limits: SmallShardLimits, garbage: inout [SlabPage]) {
        guard figures.objectCount > limits.objects || figures.objectBytes > limits.bytes, !pages.isEmpty else { return }
        let objects = limits.objects - limits.objects / 8
        let bytes = limits.bytes - limits.bytes / 8
        var steps = 3 * pages.count
        while (figures.objectCount > objects || figures.objectBytes > bytes) && steps > 0 {
            steps -= 1
            clockHand = clockHand + 1 < pages.count ? clockHand + 1 : 0
            guard let page = pages[clockHand], !page.isOpen, page.readers.load(ordering: .acquiring) == 0 else { continue }
            if page.isPinned && hot.records[clockHand].referenced {
                hot.records[clockHand].referenced = false
                continue
            }
            figures.evictedPages += 1
            figures.evictedObjects += page.liveCount
            figures.objectCount -= page.liveCount
            figures.objectBytes -= page.liveBytes
            figures.slotBytes -= page.liveCount * page.slotSize
            remove(pageAt: clockHand, garbage: &garbage)
        }
        if entries.count > 2 * figures.objectCount + 64 {
            entries = entries.filter { _, slot in pages[Int(slot.page)]?.epoch == slot.epoch }
        }
    }

    /// Unpins pinned pages the clock finds unreferenced until at most `limit` pinned pages
    /// remain besides the open ones (pages being read are skipped). With `regroup`, a page
    /// on which at most half of the objects were read in its window is unpinned at once and
    /// marked draining: the objects that were read move to the fill page on their next read
    /// (see `SmallObjectCache+Regrouping.swift`).
    @usableFromInline
    mutating func enforceHotBudget(_ limit: Int, regroup: Bool, garbage: inout [SlabPage]) {
        guard pinnedPages > limit + SlabSizeClass.slotSizes.count, !pages.isEmpty else { return }
        var steps = 2 * pages.count
        while pinnedPages > limit && steps > 0 {
            steps -= 1
            clockHand = clockHand + 1 < pages.count ? clockHand + 1 : 0
            guard let page = pages[clockHand], page.isPinned, !page.isOpen else { continue }
            if page.readers.load(ordering: .acquiring) != 0 { continue }
            if page.liveCount == 0 {
                remove(pageAt: clockHand, garbage: &garbage)
                continue
            }
            // Mostly cold at the end of its window: volatile now, whatever its reference bit
            // (the few objects read move as they are read again). A draining page is never
            // referenced: its reads move their objects off it.
            if !(regroup && drainIfMostlyCold(clockHand, page)) && hot.records[clockHand].referenced {
                hot.records[clockHand].referenced = false
                continue
            }
            page.unpin()
            syncHot(clockHand)
            pinnedPages -= 1
            volatilePages += 1
            figures.pageUnpins += 1
        }
        reapOrphans(garbage: &garbage)
    }

    /// Makes every pinned page no reader is on volatile (the open pages too: new objects
    /// then go to new pages).
    /// - Returns: The pages made volatile.
    mutating func unpinAll() -> Int {
        var count = 0
        for index in pages.indices {
            guard let page = pages[index], page.isPinned, page.readers.load(ordering: .acquiring) == 0 else { continue }
            if page.isOpen {
                page.isOpen = false
                open[page.sizeClass] = -1
            }
            page.unpin()
            syncHot(index)
            page.isListedPartial = false
            count += 1
        }
        pinnedPages -= count
        volatilePages += count
        figures.pageUnpins += count
        for sizeClass in partial.indices { partial[sizeClass].removeAll(keepingCapacity: false) }
        return count
    }

    mutating func reapOrphans(garbage: inout [SlabPage]) {
        guard !orphans.isEmpty else { return }
        orphans.removeAll { page in
            guard page.readers.load(ordering: .acquiring) == 0 else { return false }
            garbage.append(page)
            return true
        }
    }
}

/// What the inlined hit found.
@usableFromInline
enum SmallHotRead {
    /// Copied to the scratch buffer: this many bytes.
    case copied(Int)
    /// Too large to copy: one reader is counted on the page (the caller subtracts it).
    case counted(SlabPage, UnsafeRawBufferPointer)
    /// Absent, volatile or dropped: the slow path decides.
    case notHot
}

/// A shard's share of the cache's count and cost limits (`Int.max` for none).
@usableFromInline
struct SmallShardLimits: Sendable {
    @usableFromInline let objects: Int
    @usableFromInline let bytes: Int
}

/// What a hit reads of a slab page, kept apart from the page object so that a hit touches
/// one small record in a table that stays in the CPU caches.
@usableFromInline
struct SmallPageRecord {
    /// The page's first byte (nil once the page is given back).
    @usableFromInline var base: UnsafeMutableRawPointer?
    /// The page's epoch while it is pinned (and not draining); 0 while it is volatile,
    /// draining or given back.
    @usableFromInline var epoch: UInt32
    /// The clock's reference bit: an object on the page was read since the hand last passed,
    /// or the page is new.
    @usableFromInline var referenced: Bool
    /// The objects read during the page's window (`SlabPage.windowStart`): one bit
    /// per 64-byte unit of the page, set at a slot's first unit. From 64-byte slots up that is
    /// one bit per slot; smaller slots share a bit (two to four a unit), which only coarsens
    /// the count. Their count tells a page of mostly cold objects from a hot one. (One word,
    /// so that the record is 24 bytes: a hit reads one record at random, and a million
    /// 256-byte objects have 62,500 of them.)
    @usableFromInline var accessed: UInt64

    @usableFromInline
    init(base: UnsafeMutableRawPointer?, epoch: UInt32) {
        self.base = base
        self.epoch = epoch
        referenced = false
        accessed = 0
    }

    /// Sets the reference bit, and the bit of the slot at `offset` (bytes from the page's start).
    @inlinable @inline(__always)
    static func markAccessed(_ record: UnsafeMutablePointer<SmallPageRecord>, offset: Int) {
        record.pointee.referenced = true
        record.pointee.accessed |= 1 &<< UInt64(truncatingIfNeeded: offset &>> 6)
    }

    /// Clears the bit of the slot at `offset` (its object left the page), if the slot has a
    /// bit of its own.
    mutating func clearAccessed(offset: Int, slotSize: Int) {
        if slotSize >= 64 { accessed &= ~(1 << UInt64(offset >> 6)) }
    }

    /// How many units of the page had an object read during the window.
    var accessedCount: Int { accessed.nonzeroBitCount }

    /// Clears everything (the page is given back).
    mutating func clearAccessed() {
        referenced = false
        accessed = 0
    }
}

/// A shard's page records, by page index, in memory of its own: a hit reads and sets a
/// record through a pointer, with no array bounds or copy-on-write check. Only touched
/// under the shard's lock; it grows (and may move) only there.
@usableFromInline
final class SmallPageTable {
    // Only touched under the shard's lock: no dynamic exclusivity check (a runtime call).
    @exclusivity(unchecked) @usableFromInline private(set) var records: UnsafeMutablePointer<SmallPageRecord>
    private(set) var count = 0
    private var capacity = 0

    init() { records = .allocate(capacity: 0) }

    deinit { records.deallocate() }

    /// Adds a record for a new page index (volatile, unreferenced until set).
    func append() {
        if count == capacity {
            let grown = UnsafeMutablePointer<SmallPageRecord>.allocate(capacity: max(16, 2 * capacity))
            grown.moveInitialize(from: records, count: count)
            records.deallocate()
            records = grown
            capacity = max(16, 2 * capacity)
        }
        (records + count).initialize(to: SmallPageRecord(base: nil, epoch: 0))
        count += 1
    }

    /// Copies an object out of its slot in 16-byte words, rounded up: slots are 16-byte
    /// aligned multiples of 16 bytes, so the words stay inside the slot, and a short loop
    /// of vector moves beats a call to `memcpy` at these sizes.
    @inlinable @inline(__always)
    static func copySlot(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int) {
        var offset = 0
        repeat {
            destination.storeBytes(of: source.load(fromByteOffset: offset, as: SIMD16<UInt8>.self), toByteOffset: offset, as: SIMD16<UInt8>.self)
            offset &+= 16
        } while offset < count
    }
}

/// A handle on one shard: its lock and its state, at fixed addresses for the cache's
/// lifetime. Plain pointers, so that taking a shard costs no reference count (an atomic
/// increment and decrement per hit with a class).
///
/// The lock is a `pthread_mutex_t` as in VolatileSystem's `Lock` (so ThreadSanitizer sees it),
/// held here directly because the hit path is inlined into the cache's callers, which can
/// only see public declarations of other modules. The lock lives apart from the state: the
/// state is only ever accessed (even read) with the lock held.
@usableFromInline
struct SmallShardRef<Key: Hashable & Sendable> {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let state: UnsafeMutablePointer<SmallShard<Key>>

    @inlinable init(mutex: UnsafeMutablePointer<pthread_mutex_t>, state: UnsafeMutablePointer<SmallShard<Key>>) {
        self.mutex = mutex
        self.state = state
    }

    @inlinable @inline(__always)
    func withLock<Result, E: Error>(_ body: (inout SmallShard<Key>) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state.pointee)
    }
}

/// The shards of a cache, in memory the cache owns (freed by its `deinit`): the states side
/// by side, the locks a cache line apart (threads on different shards do not share lines).
@usableFromInline
struct SmallShardTable<Key: Hashable & Sendable>: RandomAccessCollection, @unchecked Sendable {
    // Each shard's state is only touched under its own mutex (`SmallShardRef.withLock`).
    @usableFromInline let mutexes: UnsafeMutableRawPointer
    @usableFromInline let states: UnsafeMutablePointer<SmallShard<Key>>
    @usableFromInline let endIndex: Int
    @usableFromInline var startIndex: Int { 0 }
    @usableFromInline static var mutexStride: Int { 64 }

    init(count: Int) {
        precondition(MemoryLayout<pthread_mutex_t>.size <= Self.mutexStride)
        mutexes = .allocate(byteCount: count * Self.mutexStride, alignment: Self.mutexStride)
        states = .allocate(capacity: count)
        for index in 0..<count {
            let mutex = (mutexes + index * Self.mutexStride).initializeMemory(as: pthread_mutex_t.self, repeating: pthread_mutex_t(), count: 1)
            let status = pthread_mutex_init(mutex, nil)
            precondition(status == 0, "pthread_mutex_init failed: \(status)")
            (states + index).initialize(to: SmallShard())
        }
        endIndex = count
    }

    @inlinable
    subscript(index: Int) -> SmallShardRef<Key> {
        SmallShardRef(
            mutex: (mutexes + index &* Self.mutexStride).assumingMemoryBound(to: pthread_mutex_t.self), state: states + index)
    }

    /// Destroys the shards; only from the cache's `deinit`.
    func deallocate() {
        for index in 0..<endIndex { pthread_mutex_destroy(self[index].mutex) }
        states.deinitialize(count: endIndex)
        states.deallocate()
        mutexes.deallocate()
    }
}
