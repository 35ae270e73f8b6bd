public import Synchronization
import VolatileMemory

/// Where an entry's content is.
@usableFromInline
enum EntryPhase: UInt8 {
    /// Being generated for the first time (or after a drop): its flight's waiters wait.
    case loading
    /// A syscall is moving it between hot and volatile, outside the shard lock: waiters wait.
    case busy
    /// Pinned and in the shard's hot list: hits make no syscall.
    case hot
    /// Volatile (`MADV_FREE`) and in the shard's volatile list: a hit re-pins it.
    case volatile
}

/// One cached object. Its `var`s are guarded by its shard's mutex, with two exceptions:
/// `holds` is atomic (readers release without the lock), and once an entry is removed with
/// no holds left, exactly one thread (the one that saw the last hold go) owns its extent.
///
/// Holds are only ever added under the shard lock, so under that lock `holds == 0` is stable:
/// demotion and eviction claim an unheld entry by moving it to `busy` or removed there, and no
/// hit can start on it meanwhile.
@usableFromInline
final class CacheEntry<Key: Hashable & Sendable>: @unchecked Sendable {
    // The fields a hit reads and writes come first: with a small key they share the
    // object's first cache line. They are guarded by the shard lock, so the dynamic
    // exclusivity checks of class properties (a runtime call per access) are turned off.
    /// Readers holding the content: `2 * count`, plus bit 0 once the entry is removed. The
    /// thread that moves it to exactly 1 (removed, no readers) frees the extent.
    @usableFromInline let holds = Atomic<Int>(0)
    @exclusivity(unchecked) @usableFromInline var phase: EntryPhase
    /// First byte of the content while hot (stays valid while any hold exists).
    @exclusivity(unchecked) @usableFromInline var base: UnsafeRawPointer?
    @exclusivity(unchecked) @usableFromInline var byteCount = 0
    /// Whole pages, for the hot / volatile byte figures.
    @exclusivity(unchecked) @usableFromInline var footprint = 0
    /// Recency clock value of the last access (see `VolatileCache+Shards.swift`).
    @exclusivity(unchecked) @usableFromInline var stamp: UInt64 = 0
    @usableFromInline let key: Key
    /// The single-flight record while `loading` or `busy`.
    var flight: Flight?
    var pinned: PinnedExtent?
    var volatile: VolatileExtent?
    var cost = 0
    /// The stamp the entry's list position was sorted by; a hit changes only `stamp`, and
    /// the demotion scan re-places the entry when the two differ.
    var listedStamp: UInt64 = 0
    var isRemoved = false
    /// The list the entry is in: `.none` while loading, busy, or removed.
    var list: ListMembership = .none
    @usableFromInline unowned(unsafe) var newer: CacheEntry?
    @usableFromInline unowned(unsafe) var older: CacheEntry?

    init(key: Key, phase: EntryPhase, flight: Flight?) {
        self.key = key
        self.phase = phase
        self.flight = flight
    }

    enum ListMembership: UInt8 { case none, hot, volatile }
}

/// An intrusive list sorted by ``CacheEntry/listedStamp`` (newest at the head). Links are
/// unowned: the shard's dictionary owns the entries, and an entry leaves the list before it
/// leaves the dictionary.
@usableFromInline
struct EntryList<Key: Hashable & Sendable> {
    @usableFromInline unowned(unsafe) var newest: CacheEntry<Key>?
    @usableFromInline unowned(unsafe) var oldest: CacheEntry<Key>?
    @usableFromInline var count = 0

    init() {}

    @inlinable
    mutating func pushNewest(_ entry: CacheEntry<Key>) {
        entry.older = newest
        entry.newer = nil
        if let newest { newest.newer = entry } else { oldest = entry }
        newest = entry
        count += 1
    }

    /// Inserts by listed stamp (most re-placed or demoted entries are recent, so the walk
    /// from the head is short).
    mutating func insertOrdered(_ entry: CacheEntry<Key>) {
        var cursor = newest
        while let current = cursor, current.listedStamp > entry.listedStamp { cursor = current.older }
        guard let before = cursor else {
            // Older than everything: becomes the oldest.
            entry.newer = oldest
            entry.older = nil
            if let oldest { oldest.older = entry } else { newest = entry }
            oldest = entry
            count += 1
            return
        }
        if before === newest { pushNewest(entry); return }
        // Between `before` (older) and `before.newer`.
        let after = before.newer!
        entry.older = before
        entry.newer = after
        before.newer = entry
        after.older = entry
        count += 1
    }

    /// The entries' keys, newest first (for tests).
    /// - Complexity: O(count).
    var keys: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var cursor = newest
        while let entry = cursor {
            keys.append(entry.key)
            cursor = entry.older
        }
        return keys
    }

    @inlinable
    mutating func remove(_ entry: CacheEntry<Key>) {
        if let newer = entry.newer { newer.older = entry.older } else { newest = entry.older }
        if let older = entry.older { older.newer = entry.newer } else { oldest = entry.newer }
        entry.newer = nil
        entry.older = nil
        count -= 1
    }
}

/// What a pass under a lock takes out of the cache, freed by the same thread once the lock
/// is released: freeing an extent is a syscall, and an entry's deinit runs its key's deinit.
struct Garbage: @unchecked Sendable {  // Built under one lock, disposed by the same thread after it.
    var pinned: [PinnedBox] = []
    var volatile: [VolatileBox] = []
    /// References given up by the shard's dictionary.
    var references: [AnyObject] = []

    mutating func add(_ extent: consuming PinnedExtent) { pinned.append(PinnedBox(extent)) }
    mutating func add(_ extent: consuming VolatileExtent) { volatile.append(VolatileBox(extent)) }

    /// Frees everything now. Call it after the lock, so the frees happen here and not
    /// wherever the optimizer ends the value's lifetime.
    mutating func dispose() {
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
