import Synchronization
import VolatileMemory

/// Where an entry's content is (see ``CacheEntry`` for the transitions).
@usableFromInline
enum EntryPhase: UInt8 {
    /// Being generated for the first time (or after a drop): its flight's waiters wait.
    case loading
    /// A syscall is moving it between hot and volatile, outside the shard lock: waiters wait.
    case busy
    /// Pinned, in the shard's hot list and published in its hot index: hits take no lock.
    case hot
    /// Unpublished from the hot index and still pinned, waiting for a grace period before
    /// its unpin (lock-free readers may still be reading it). A locked look-up revives it.
    case demoting
    /// Volatile (`MADV_FREE`) and in the shard's volatile list: a hit re-pins it. With
    /// ``CacheEntry/isSwappable`` it is ordinary memory instead (kept swappable: the kernel
    /// may swap it out), in the same list, and a hit swaps it back in (see `VolatileCache+Volatility.swift`).
    case volatile
}

/// One cached object and its lifecycle: every change of phase, list membership, hot-index
/// publication and removal is one of the named transitions below, made under the entry's
/// shard lock (except the hold count, which is atomic).
///
/// ```text
///                 beginLoad
///   (absent) ─────────────────► loading ──install──┐
///                                  ▲               ▼
///                regenerate  ┌─────┘   ┌────────► hot ◄──────────────┐ revive (locked look-up)
///                (dropped)   │         │ install   │ claimForDemotion │
///                            │         │           ▼                  │
///   volatile ──claimForRepin─┴──► busy ┘        demoting ─────────────┘
///      ▲                          ▲  │              │ after a grace period:
///      │       finishUnpin        │  │              │ beginUnpin
///      └──────────────────────────┼──┘◄─────────────┘
///                                 └── (busy: an unpin or re-pin syscall, outside the lock)
///
///   Kept swappable (issue 9): after a grace period, busy ──finishKeepingSwappable──► volatile
///   with `isSwappable` (the extent stays pinned, ordinary memory); claimSwappable takes it back
///   to busy, for a hit (then install → hot) or to be made volatile (unpin, finishUnpin).
///
///   any phase ──detach──► removed (out of the dictionary, lists and hot index). Its extent
///   is freed by whoever finishes last: the grace period of a hot or demoting entry, the
///   last counted hold, or the thread that made it loading or busy.
/// ```
///
/// Lock-free readers never touch the entry: they read its immutable ``HotRecord`` and are
/// protected by the grace period that every unpublish starts (see `ReadEpochs.swift`).
/// Counted holds (`pinnedValue`, async and slow-path readers) are only added under the shard
/// lock, so under that lock `holds == 0` is stable: demotion and eviction claim an unheld
/// entry there.
@usableFromInline
final class CacheEntry<Key: Hashable & Sendable>: @unchecked Sendable {  // Guarded by the shard lock (holds: atomic).
    /// Counted readers holding the content: `2 * count`, plus bit 0 once the entry is removed
    /// and its grace period is over. The thread that moves it to exactly 1 frees the extent.
    let holds = Atomic<Int>(0)
    private(set) var phase: EntryPhase
    /// First byte of the content while hot (stays valid while any hold exists).
    private(set) var base: UnsafeRawPointer?
    private(set) var byteCount = 0
    /// Whole pages, for the hot / volatile byte figures.
    private(set) var footprint = 0
    /// Recency clock value of the last access seen (see `VolatileCache+Shards.swift`), in a
    /// cell that read-buffer drains reach from a record without generic metadata.
    var stamp: UInt64 {
        get { recency.pointee.stamp }
        set { recency.pointee.stamp = newValue }
    }
    let recency: UnsafeMutablePointer<EntryRecency>
    let key: Key
    /// The single-flight record while `loading` or `busy`.
    var flight: Flight?
    var pinned: PinnedExtent?
    var volatile: VolatileExtent?
    private(set) var cost = 0
    /// The stamp the entry's list position was sorted by; a hit changes only `stamp`, and
    /// the demotion scan re-places the entry when the two differ.
    var listedStamp: UInt64 = 0
    private(set) var isRemoved = false
    /// The list the entry is in: `.none` while loading, demoting, busy, or removed.
    private(set) var list: ListMembership = .none {
        didSet { recency.pointee.isHotListed = list == .hot }
    }
    /// The record published in the hot index while `hot`.
    private(set) var record: UnsafeMutablePointer<HotRecord<Key>>?
    /// In the volatile list but kept swappable: `pinned` holds its ordinary memory and
    /// `volatile` is nil (issue 9; see `VolatileCache+Volatility.swift`).
    private(set) var isSwappable = false
    /// What regenerating it cost, per byte (issue 9's advisor compares it with swap).
    var regenerationCost = RegenerationCost()
    /// The hint given on insert.
    var volatilityHint = VolatilityHint.automatic
    /// Counts demotion claims, so a grace period that ends after a revive does nothing.
    private(set) var demotionTicket: UInt64 = 0
    /// Links in the shard's hot or volatile list (``EntryList``).
    var recencyLinks = EntryLinks<Key>()
    /// The adaptive policy's segment and its bookkeeping (see `VolatileCache+Segments.swift`),
    /// under the shard lock; untouched under LRU.
    var segment = PolicySegment.none
    /// A clock value no older than the entry's stamp when it entered its place in the segment:
    /// a newer ``stamp`` means it was accessed since.
    var segmentStamp: UInt64 = 0
    /// The weight counted in the segment's total (bytes, or cost under a cost limit).
    var segmentWeight = 0
    /// Weight of the victims a candidate has displaced so far.
    var segmentCredit = 0
    /// Links in the adaptive policy's segment list (``SegmentList``).
    var segmentLinks = EntryLinks<Key>()

    /// The links of the list of `kind`.
    subscript(links kind: EntryLinkKind) -> EntryLinks<Key> {
        get { kind == .recency ? recencyLinks : segmentLinks }
        set { if kind == .recency { recencyLinks = newValue } else { segmentLinks = newValue } }
    }

    var newer: CacheEntry? { recencyLinks.newer }
    var older: CacheEntry? { recencyLinks.older }
    var segmentNewer: CacheEntry? { segmentLinks.newer }
    var segmentOlder: CacheEntry? { segmentLinks.older }

    init(key: Key, phase: EntryPhase, flight: Flight?) {
        self.key = key
        self.phase = phase
        self.flight = flight
        // A whole cache line of its own: drains write it, and lock-free readers on other
        // cores read records that malloc would otherwise place beside it.
        recency = UnsafeMutableRawPointer.allocate(byteCount: EntryRecency.lineSize, alignment: EntryRecency.lineSize)
            .bindMemory(to: EntryRecency.self, capacity: 1)
        recency.initialize(to: EntryRecency())
    }

    deinit {
        recency.deinitialize(count: 1)
        UnsafeMutableRawPointer(recency).deallocate()
    }

    enum ListMembership: UInt8 { case none, hot, volatile }

    // MARK: Transitions (all under the shard lock)

    /// loading/busy → hot: records the new content, publishes it in the hot index and puts
    /// the entry at the head of the hot list. Not for a removed entry (see ``installRemoved(extent:)``).
    /// - Returns: The flight to finish after the lock.
    func install(
        base: UnsafeRawPointer, byteCount: Int, footprint: Int, cost: Int, hash: Int, stamp: UInt64,
        in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage
    ) -> Flight? {
        precondition(phase == .loading || phase == .busy, "install from \(phase)")
        let flight = takeContent(base: base, byteCount: byteCount, footprint: footprint)
        self.cost = cost
        self.stamp = stamp
        listedStamp = stamp
        state.hot.pushNewest(self)
        list = .hot
        state.placeInSegment(self)
        publish(hash: hash, in: &state, index: index, garbage: &garbage)
        return flight
    }

    /// loading/busy of a removed entry: takes the finished content, which no one else sees.
    func installRemoved(base: UnsafeRawPointer, byteCount: Int, footprint: Int) -> Flight? {
        precondition(isRemoved)
        return takeContent(base: base, byteCount: byteCount, footprint: footprint)
    }

    /// loading/busy → hot, the part both installs share: the new content, and the flight
    /// handed back to be finished after the lock.
    private func takeContent(base: UnsafeRawPointer, byteCount: Int, footprint: Int) -> Flight? {
        let flight = self.flight
        self.flight = nil
        self.base = base
        self.byteCount = byteCount
        self.footprint = footprint
        phase = .hot
        return flight
    }

    /// The cost recorded when the content was produced; `cost` is set by ``install``.
    func setCost(_ cost: Int) { self.cost = cost }

    /// hot → demoting: unpublishes the entry and takes it out of the hot list. The unpin
    /// waits for a grace period (`finishGracePeriodOfDemotion`).
    /// - Returns: The ticket that the grace period's work must still find.
    func claimForDemotion(in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage) -> UInt64 {
        precondition(phase == .hot && list == .hot && !isRemoved)
        state.hot.remove(self)
        list = .none
        unpublish(in: &state, index: index, garbage: &garbage)
        phase = .demoting
        demotionTicket &+= 1
        return demotionTicket
    }

    /// demoting → hot: a locked look-up found it before its unpin; it is published again.
    func revive(hash: Int, stamp: UInt64, in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage) {
        precondition(phase == .demoting && !isRemoved)
        demotionTicket &+= 1
        phase = .hot
        self.stamp = stamp
        listedStamp = stamp
        state.hot.pushNewest(self)
        list = .hot
        publish(hash: hash, in: &state, index: index, garbage: &garbage)
    }

    /// demoting → busy, after the grace period: takes the pinned extent for the unpin.
    /// - Returns: The extent, or nil when the claim is stale (revived since, or removed).
    func beginUnpin(ticket: UInt64, flight: Flight) -> PinnedExtent? {
        guard phase == .demoting, demotionTicket == ticket, !isRemoved else { return nil }
        phase = .busy
        self.flight = flight
        return pinned.take()
    }

    /// busy → volatile: the unpin is done.
    func finishUnpin(_ extent: consuming VolatileExtent, in state: inout ShardState<Key>) {
        precondition(phase == .busy && !isRemoved)
        flight = nil
        volatile = consume extent
        phase = .volatile
        list = .volatile
        listedStamp = stamp
        state.volatile.insertOrdered(self)
    }

    /// busy → volatile, kept swappable: the demotion skipped the unpin; the extent stays
    /// ordinary memory.
    func finishKeepingSwappable(_ extent: consuming PinnedExtent, in state: inout ShardState<Key>) {
        precondition(phase == .busy && !isRemoved)
        flight = nil
        pinned = consume extent
        isSwappable = true
        phase = .volatile
        list = .volatile
        listedStamp = stamp
        state.volatile.insertOrdered(self)
    }

    /// volatile and swappable → busy: a look-up (to swap it back in and make it hot) or the
    /// advisor (to make it volatile) takes its extent.
    func claimSwappable(flight: Flight, in state: inout ShardState<Key>) -> PinnedExtent {
        precondition(phase == .volatile && list == .volatile && isSwappable)
        state.volatile.remove(self)
        list = .none
        phase = .busy
        isSwappable = false
        self.flight = flight
        return pinned.take()!
    }

    /// volatile → busy: a look-up takes the volatile extent to re-pin it.
    func claimForRepin(flight: Flight, in state: inout ShardState<Key>) -> VolatileExtent {
        precondition(phase == .volatile && list == .volatile && !isSwappable)
        state.volatile.remove(self)
        list = .none
        phase = .busy
        self.flight = flight
        return volatile.take()!
    }

    /// any → removed: out of the lists and the hot index (the caller takes it out of the
    /// dictionary). Idempotent.
    /// - Returns: The phase it was removed from, or nil if it was removed already.
    func detach(in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage) -> EntryPhase? {
        guard !isRemoved else { return nil }
        isRemoved = true
        state.removeFromSegment(self)
        switch list {
        case .hot: state.hot.remove(self)
        case .volatile: state.volatile.remove(self)
        case .none: break
        }
        list = .none
        if phase == .hot { unpublish(in: &state, index: index, garbage: &garbage) }
        return phase
    }

    private func publish(hash: Int, in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage) {
        recency.pointee.hash = hash
        let record = UnsafeMutablePointer<HotRecord<Key>>.allocate(capacity: 1)
        record.initialize(to: HotRecord(recency: recency, hash: hash, key: key, base: base!, byteCount: byteCount, entry: self))
        self.record = record
        index.publish(record, in: &state, garbage: &garbage)
    }

    private func unpublish(in state: inout ShardState<Key>, index: ShardPointer<Key>, garbage: inout Garbage) {
        guard let record else { return }
        self.record = nil
        index.unpublish(record, in: &state, garbage: &garbage)
    }
}

/// An entry's recency, what a read-buffer drain updates (under the shard lock). Not generic,
/// so the drain loop needs no type metadata.
@usableFromInline
struct EntryRecency {
    var stamp: UInt64 = 0
    /// The key's hash, for the adaptive policy's sketch (set when the entry is published:
    /// read-buffer slots hold cells, not records, so drains find it here).
    var hash = 0
    /// The shard's ``ShardRecency/drainWrites`` when a drain last stamped the entry (its
    /// recency window: locked stamps leave it, so their next drain stamps again).
    var drainWrite: UInt32 = 0
    /// Whether the entry is in its shard's hot list (only those take stamps from drains).
    var isHotListed = false

    /// Each cell is allocated alone on a cache line of this size.
    static var lineSize: Int { 64 }
}

/// Which of an entry's two pairs of links a list threads through.
enum EntryLinkKind {
    /// The shard's hot and volatile lists.
    case recency
    /// The adaptive policy's segments.
    case segment
}

/// One pair of links of an intrusive list. Unowned: the shard's dictionary owns the entries,
/// and an entry leaves its lists before it leaves the dictionary.
struct EntryLinks<Key: Hashable & Sendable> {
    unowned(unsafe) var newer: CacheEntry<Key>?
    unowned(unsafe) var older: CacheEntry<Key>?
}

/// An intrusive doubly linked list of entries through their links of one kind: the shard's
/// hot and volatile lists (``EntryList``) and the policy's segments (``SegmentList``).
struct LinkedEntries<Key: Hashable & Sendable> {
    let kind: EntryLinkKind
    unowned(unsafe) var newest: CacheEntry<Key>?
    unowned(unsafe) var oldest: CacheEntry<Key>?
    var count = 0

    init(_ kind: EntryLinkKind) { self.kind = kind }

    mutating func pushNewest(_ entry: CacheEntry<Key>) {
        entry[links: kind] = EntryLinks(newer: nil, older: newest)
        if let newest { newest[links: kind].newer = entry } else { oldest = entry }
        newest = entry
        count += 1
    }

    /// Puts `entry` right after `older` (nil: as the oldest).
    mutating func insert(_ entry: CacheEntry<Key>, after older: CacheEntry<Key>?) {
        guard let older else {
            entry[links: kind] = EntryLinks(newer: oldest, older: nil)
            if let oldest { oldest[links: kind].older = entry } else { newest = entry }
            oldest = entry
            count += 1
            return
        }
        guard let newer = older[links: kind].newer else { return pushNewest(entry) }
        entry[links: kind] = EntryLinks(newer: newer, older: older)
        older[links: kind].newer = entry
        newer[links: kind].older = entry
        count += 1
    }

    mutating func remove(_ entry: CacheEntry<Key>) {
        let links = entry[links: kind]
        if let newer = links.newer { newer[links: kind].older = links.older } else { newest = links.older }
        if let older = links.older { older[links: kind].newer = links.newer } else { oldest = links.newer }
        entry[links: kind] = EntryLinks()
        count -= 1
    }

    /// The entries' keys, newest first or oldest first (for tests).
    /// - Complexity: O(count).
    func keys(newestFirst: Bool) -> [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var cursor = newestFirst ? newest : oldest
        while let entry = cursor {
            keys.append(entry.key)
            cursor = newestFirst ? entry[links: kind].older : entry[links: kind].newer
        }
        return keys
    }
}

/// An intrusive list sorted by ``CacheEntry/listedStamp`` (newest at the head).
struct EntryList<Key: Hashable & Sendable> {
    private(set) var entries = LinkedEntries<Key>(.recency)
    var newest: CacheEntry<Key>? { entries.newest }
    var oldest: CacheEntry<Key>? { entries.oldest }
    var count: Int { entries.count }

    init() {}

    mutating func pushNewest(_ entry: CacheEntry<Key>) { entries.pushNewest(entry) }

    mutating func remove(_ entry: CacheEntry<Key>) { entries.remove(entry) }

    /// Inserts by listed stamp (most re-placed or demoted entries are recent, so the walk
    /// from the head is short).
    mutating func insertOrdered(_ entry: CacheEntry<Key>) {
        var cursor = entries.newest
        while let current = cursor, current.listedStamp > entry.listedStamp { cursor = current.older }
        entries.insert(entry, after: cursor)
    }

    /// The entries' keys, newest first (for tests).
    var keys: [Key] { entries.keys(newestFirst: true) }
}

/// What a pass under a lock takes out of the cache, freed by the same thread once the lock
/// is released: freeing an extent is a syscall, and an entry's deinit runs its key's deinit.
/// What lock-free readers may still see (records, index tables, the extents behind them) is
/// not freed here but retired: it waits for a grace period (see `ReadEpochs.swift`).
struct Garbage: @unchecked Sendable {  // Built under one lock, disposed by the same thread after it.
    var pinned: [PinnedBox] = []
    var volatile: [VolatileBox] = []
    /// References given up by the shard's dictionary.
    var references: [AnyObject] = []
    /// Work that waits for a grace period.
    var retired: [Retired] = []

    mutating func add(_ extent: consuming PinnedExtent) { pinned.append(PinnedBox(extent)) }
    mutating func add(_ extent: consuming VolatileExtent) { volatile.append(VolatileBox(extent)) }

    /// Frees what needs no grace period now. Call it after the lock, so the frees happen here
    /// and not wherever the optimizer ends the value's lifetime; hand `retired` to the cache.
    mutating func disposeImmediate() {
        pinned = []
        volatile = []
        references = []
    }
}

/// Boxes so that arrays can carry `~Copyable` extents; freeing the box frees the extent.
final class PinnedBox: @unchecked Sendable {  // Owns its extent exclusively.
    var extent: PinnedExtent?
    init(_ extent: consuming PinnedExtent) { self.extent = .some(extent) }
}

final class VolatileBox: @unchecked Sendable {  // Owns its extent exclusively.
    var extent: VolatileExtent?
    init(_ extent: consuming VolatileExtent) { self.extent = .some(extent) }
}
