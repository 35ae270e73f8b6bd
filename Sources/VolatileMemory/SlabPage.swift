public import Synchronization

/// The size classes of objects smaller than a page, and the class an object falls in.
///
/// Roughly a quarter apart (16 B to 2 KiB), so an object wastes at most a third of its slot.
package enum SlabSizeClass {
    /// Slot sizes in bytes, ascending.
    package static let slotSizes: [Int] = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048]
    /// The largest object a slab slot holds.
    package static var maximumByteCount: Int { 2048 }

    /// The index in ``slotSizes`` of the smallest slot that holds `byteCount` bytes, or nil
    /// when it needs more than ``maximumByteCount``.
    @inline(__always)
    package static func index(for byteCount: Int) -> Int? {
        guard byteCount <= 2048 else { return nil }
        if byteCount <= 16 { return 0 }
        if byteCount <= 64 { return (byteCount + 15) / 16 - 1 }  // 32, 48, 64
        // Above 64: two classes per power of two (1x and 1.5x).
        var index = 3
        var low = 64
        while true {
            if byteCount <= low + low / 2 { return index + 1 }
            if byteCount <= low * 2 { return index + 2 }
            index += 2
            low *= 2
        }
    }
}

/// One page of an arena, cut into equal slots for objects smaller than a page.
///
/// Public only so that a small-object cache's hit can be inlined into its callers: its
/// creation, slot allocation, pin and unpin are package API, used by `SmallObjectCache`.
///
/// The page is one one-page extent of the arena, so it is pinned, unpinned and checked for
/// drops exactly like any extent: one `madvise` (or one populate) covers every object on it,
/// and detection stays page-exact (a dropped page loses all its objects at once).
///
/// The memory layer knows nothing of keys: the owner (the small-object cache) keeps which
/// object is in which slot, and guards every mutable field with its own lock. Only
/// ``readers`` is atomic: it is incremented under the owner's lock and decremented without
/// it, so under that lock `readers == 0` is stable.
///
/// ```text
///   allocate ──► pinned ──unpin()──► volatile ──pin()──┬─► pinned (intact: objects kept)
///                  ▲                                   └─► pinned, empty (dropped: every
///                  └──────────────────────────────────────  object gone, new epoch)
/// ```
public final class SlabPage: @unchecked Sendable {  // Mutable fields: the owner's lock. `readers`: atomic.
    // The mutable fields are guarded by the owner's lock: `@exclusivity(unchecked)` drops the
    // dynamic exclusivity check (a runtime call per access) that guards nothing here.
    /// Readers of a slot on this page right now (their bodies run without the owner's lock).
    public let readers = Atomic<Int>(0)
    /// The first byte of the page (the same address whether pinned or volatile).
    public let base: UnsafeMutableRawPointer
    /// The slot size.
    public let slotSize: Int
    /// The size class index (see ``SlabSizeClass``).
    package let sizeClass: Int
    /// Slots on the page.
    package let slotCount: Int
    /// Changes whenever the page loses its objects (a drop): slots handed out before carry
    /// the old epoch, so their owners can tell.
    @exclusivity(unchecked) public internal(set) var epoch: UInt32
    /// Slots holding an object.
    @exclusivity(unchecked) package private(set) var liveCount = 0
    /// Bytes of the live objects (kept by the owner; reset when the page is dropped).
    @exclusivity(unchecked) package var liveBytes = 0
    /// Whether the owner lists the page as having free slots.
    @exclusivity(unchecked) package var isListedPartial = false
    /// Whether the owner currently fills the page with new objects (never unpinned then).
    @exclusivity(unchecked) package var isOpen = false
    /// Whether the owner moves the page's objects elsewhere as they are read (it found them
    /// mostly cold): it then takes no new objects.
    @exclusivity(unchecked) package var isDraining = false
    /// The owner's read count when it last started counting which of the page's objects are
    /// read (its recency window).
    @exclusivity(unchecked) package var windowStart: UInt32 = 0

    /// Free slots (bit set = free), up to 256 slots (16-byte slots on a 4 KiB page).
    @exclusivity(unchecked) private var free: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Freed while a reader was on the page: they become free once no reader is.
    @exclusivity(unchecked) private var deferred: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var pinned: PinnedExtent?
    private var volatile: VolatileExtent?

    /// Takes a fresh page from the arena, pinned, every slot free.
    /// - Parameters:
    ///   - arena: The arena.
    ///   - sizeClass: The index of the slot size in ``SlabSizeClass/slotSizes``.
    ///   - epoch: The page's first epoch.
    /// - Throws: What ``VolatileArena/allocate(byteCount:zeroFilled:)`` throws.
    package init(arena: VolatileArena, sizeClass: Int, epoch: UInt32) throws(VolatileMemoryError) {
        let extent = try arena.allocate(byteCount: arena.pageSize, zeroFilled: false)
        base = extent.baseAddress
        self.sizeClass = sizeClass
        slotSize = SlabSizeClass.slotSizes[sizeClass]
        slotCount = min(256, arena.pageSize / slotSize)
        self.epoch = epoch
        pinned = consume extent
        freeAll()
    }

    /// Whether the page is ordinary memory (its objects are readable).
    @exclusivity(unchecked) public internal(set) var isPinned = true
    /// Whether a slot is free (or will be once no reader is on the page).
    package var hasFreeSlot: Bool { liveCount < slotCount }

    /// The address of slot `index`.
    @inlinable @inline(__always)
    public func address(ofSlot index: Int) -> UnsafeMutableRawPointer { base + index * slotSize }

    /// Takes a free slot; call only on a pinned page.
    /// - Returns: The slot index, or nil when none is free now.
    package func allocateSlot() -> Int? {
        if readers.load(ordering: .acquiring) == 0 {
            // No reader: slots freed under one are not being read any more.
            free.0 |= deferred.0; free.1 |= deferred.1; free.2 |= deferred.2; free.3 |= deferred.3
            deferred = (0, 0, 0, 0)
        }
        let word: Int
        let bits: UInt64
        if free.0 != 0 { word = 0; bits = free.0 }
        else if free.1 != 0 { word = 1; bits = free.1 }
        else if free.2 != 0 { word = 2; bits = free.2 }
        else if free.3 != 0 { word = 3; bits = free.3 }
        else { return nil }
        let bit = bits.trailingZeroBitCount
        let cleared = bits & (bits &- 1)
        switch word {
        case 0: free.0 = cleared
        case 1: free.1 = cleared
        case 2: free.2 = cleared
        default: free.3 = cleared
        }
        liveCount += 1
        return word * 64 + bit
    }

    /// Gives a slot back. If a reader is on the page, the slot is reused only once none is.
    /// - Parameter index: A slot taken with ``allocateSlot()`` in the current epoch.
    package func freeSlot(_ index: Int) {
        let mask = UInt64(1) << UInt64(index & 63)
        let later = readers.load(ordering: .acquiring) != 0
        switch (index >> 6, later) {
        case (0, false): free.0 |= mask
        case (1, false): free.1 |= mask
        case (2, false): free.2 |= mask
        case (3, false): free.3 |= mask
        case (0, true): deferred.0 |= mask
        case (1, true): deferred.1 |= mask
        case (2, true): deferred.2 |= mask
        default: deferred.3 |= mask
        }
        liveCount -= 1
    }

    /// Makes the page volatile (one `MADV_FREE`, or the canary words then one `MADV_FREE`).
    /// Call only when the page is pinned and no reader is on it.
    package func unpin() {
        guard let extent = pinned.take() else { return }
        volatile = extent.unpin()
        isPinned = false
    }

    /// What ``pin()`` found.
    package enum PinResult: Equatable {
        /// The page was pinned already, or came back intact: every object is there.
        case intact
        /// The kernel had dropped the page: every object on it is gone, the page is empty
        /// and pinned, with a new epoch.
        case dropped
    }

    /// Makes the page ordinary memory again, detecting whether the kernel dropped it.
    /// - Parameter nextEpoch: The epoch the page takes if it was dropped.
    /// - Returns: What the pin found.
    /// - Throws: The arena's error when the kernel cannot provide the page; the page is then
    ///   dropped as well (empty, volatile, new epoch), so its objects count as gone.
    package func pin(nextEpoch: UInt32) throws(VolatileMemoryError) -> PinResult {
        guard let extent = volatile.take() else { return .intact }
        switch extent.pin() {
        case .pinned(let page):
            let intact = !page.report.needsRegeneration
            pinned = consume page
            isPinned = true
            if intact { return .intact }
            reset(epoch: nextEpoch)
            return .dropped
        case .failed(let page, let error):
            volatile = consume page
            reset(epoch: nextEpoch)
            throw error
        }
    }

    /// Every slot free, a new epoch: the objects are gone.
    private func reset(epoch: UInt32) {
        self.epoch = epoch
        liveCount = 0
        liveBytes = 0
        freeAll()
    }

    private func freeAll() {
        deferred = (0, 0, 0, 0)
        func word(_ index: Int) -> UInt64 {
            let remaining = slotCount - index * 64
            if remaining >= 64 { return .max }
            if remaining <= 0 { return 0 }
            return (UInt64(1) << UInt64(remaining)) - 1
        }
        free = (word(0), word(1), word(2), word(3))
    }

    /// Gives the pages back to the arena at once, adjacent pages coalesced into runs (one
    /// `madvise` per run). Call only for pages no reader is on and no owner will use again.
    /// - Parameters:
    ///   - pages: The pages.
    ///   - arena: The arena they came from.
    /// - Complexity: O(n log n) for n pages, plus one system call per run.
    package static func releaseCoalesced(_ pages: [SlabPage], arena: VolatileArena) {
        var tokens: [(token: ExtentToken, accounting: VolatileArena.Accounting)] = []
        tokens.reserveCapacity(pages.count)
        for page in pages {
            page.isPinned = false
            if let extent = page.pinned.take() {
                tokens.append((extent.surrender(), .pinned))
            } else if let extent = page.volatile.take() {
                let accounting: VolatileArena.Accounting = extent.isDiscarded ? .discarded : .volatile
                tokens.append((extent.surrender(), accounting))
            }
        }
        arena.releaseCoalesced(tokens)
    }

    /// Gives the page back to the arena now (however many objects it holds).
    package func release() {
        pinned = nil
        volatile = nil
        isPinned = false
    }
}
