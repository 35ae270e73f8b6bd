public import VolatileMemory
import CVolatileShim

/// A cache for regenerable objects smaller than a page (1 B to 2 KiB), packed into shared
/// slab pages whose volatility is decided page by page.
///
/// ``VolatileCache`` gives every object at least one page of its own (a 16-byte object costs
/// 4 KiB and a system call per pin). Here objects live in slots of 4 KiB *slab pages* taken
/// from the arena like any extent, grouped by size class and in order of insertion (objects
/// inserted together share pages). A page stays pinned while any of its objects is being
/// read or the page was used recently; beyond ``Configuration/hotByteLimit`` the least
/// recently used pages become volatile, one `MADV_FREE` each for all their objects. A hit on
/// a volatile page re-pins it (one populate, or one canary swap) and with it every object on
/// it. If the kernel dropped the page, every object on it is gone: each is regenerated on
/// its next access (detection is page-exact, as for large objects).
///
/// Objects are regrouped by recency when the hot budget demotes: a page on which at most
/// half of the objects were read during its window (a span of the shard's reads, twice the
/// objects its pinned pages hold) becomes volatile at once and *draining*, and each object
/// read from it afterwards is copied to the page being filled. Recently used objects thus
/// end up together on pages that stay pinned, and cold ones together on pages that stay
/// volatile, so the kernel's reclaim of a page costs few hot objects
/// (``Statistics/drainedPages``, ``Statistics/relocatedObjects``).
///
/// ```text
///   insert ──► slot in a pinned slab page ──(page beyond the hot budget, or shed())──► volatile page
///                 ▲     ▲                                                                │
///                 │     └──────────── hit: re-pin the page (all its objects) ◄───────────┤ intact
///                 └── read of an object on a draining (mostly cold) page: moved          │
///   regenerate ◄── miss (every object of a dropped page) ◄──────────────── kernel drops ─┘
/// ```
///
/// Metadata per object is one dictionary slot (the key and 12 bytes); the slab pages'
/// bookkeeping is per page. Concurrent misses on one key may each run the regenerator
/// (there is no single flight: small objects are cheap to make); the last insert wins.
///
/// With ``Configuration/countLimit`` or ``Configuration/totalCostLimit``, a shard beyond its
/// share evicts whole slab pages in bulk, volatile ones first, their frees coalesced.
///
/// The cache is safe to use from any thread. No regenerator, writer or body runs under one
/// of its locks. The pin and unpin of a slab page (one system call of one page) are made
/// under the lock of the shard that owns the page.
public final class SmallObjectCache<Key: Hashable & Sendable>: Sendable {
    /// The configuration the cache was created with.
    public let configuration: Configuration
    /// The memory layer the cache takes its slab pages from.
    public let arena: VolatileArena
    /// The largest object the cache holds, in bytes (2 KiB).
    public static var maximumObjectByteCount: Int { SlabSizeClass.maximumByteCount }

    @usableFromInline let shards: SmallShardTable<Key>
    @usableFromInline let shardMask: Int
    /// Pinned slab pages each shard may keep beyond the ones being filled or read.
    @usableFromInline let hotPagesPerShard: Int
    /// Each shard's share of the count and cost limits (`Int.max` for none).
    @usableFromInline let limitsPerShard: SmallShardLimits
    /// Whether demotion regroups objects by recency (``Configuration/regroupsByRecency``).
    @usableFromInline let regroupsByRecency: Bool

    /// Creates a cache with its own arena.
    /// - Parameter configuration: Hot budget, shards, arena configuration.
    /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` for a field out of
    ///   range, or ``VolatileCacheError/memoryUnavailable(_:)`` if the arena cannot be created.
    public convenience init(configuration: Configuration = .default) throws(VolatileCacheError) {
        try configuration.validate()
        try self.init(arena: VolatileArena.forCache(configuration.arena), configuration: configuration)
    }

    /// Creates a cache on an existing arena (which may be shared with other caches).
    /// - Parameters:
    ///   - arena: The arena to take slab pages from; ``Configuration/arena`` is ignored.
    ///   - configuration: Hot budget and shards.
    /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` for a field out of range.
    public init(arena: VolatileArena, configuration: Configuration = .default) throws(VolatileCacheError) {
        try configuration.validate()
        self.configuration = configuration
        self.arena = arena
        var count = 1
        while count < configuration.shardCount { count <<= 1 }
        shards = SmallShardTable(count: count)
        shardMask = count - 1
        hotPagesPerShard = max(1, configuration.hotByteLimit / arena.pageSize / count)
        func share(_ limit: Int?) -> Int { limit.map { $0 / count + ($0 % count == 0 ? 0 : 1) } ?? .max }  // no overflow at .max
        limitsPerShard = SmallShardLimits(objects: share(configuration.countLimit), bytes: share(configuration.totalCostLimit))
        regroupsByRecency = configuration.regroupsByRecency
    }

    deinit { shards.deallocate() }

    /// The key's shard. An `Int` key is mixed with one multiplication instead of hashed (the
    /// shard's dictionary hashes it anyway; the shard only spreads lock traffic): in code
    /// specialized for `Int` the cast folds away, and a hit hashes once instead of twice.
    @inlinable @inline(__always)
    func shard(for key: Key) -> SmallShardRef<Key> {
        let hash = UInt(bitPattern: (key as? Int) ?? key.hashValue) &* 0x9E37_79B9_7F4A_7C15
        return shards[Int(truncatingIfNeeded: hash >> 32) & shardMask]
    }

    // MARK: - Insertion and removal

    /// Inserts (or replaces) an object. The writer fills a temporary buffer outside the
    /// cache's locks; the bytes are then copied into a slot of a pinned slab page.
    /// - Parameters:
    ///   - key: The key.
    ///   - byteCount: The object's size, 1 to ``maximumObjectByteCount``.
    ///   - write: Fills the buffer (all of it; do not escape the pointer).
    /// - Throws: ``VolatileCacheError/invalidByteCount(_:)``,
    ///   ``VolatileCacheError/objectTooLarge(requestedBytes:maximumBytes:)``,
    ///   ``VolatileCacheError/memoryUnavailable(_:)`` when no slab page can be had, or what
    ///   `write` throws (then nothing changes).
    @inlinable
    public func insert(forKey key: Key, byteCount: Int, _ write: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let sizeClass = try Self.sizeClass(for: byteCount)
        try withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 16) { buffer in
            try write(buffer)
            try store(UnsafeRawBufferPointer(buffer), sizeClass: sizeClass, forKey: key)
        }
    }

    /// Inserts (or replaces) an object by copying bytes.
    /// - Parameters:
    ///   - bytes: The content, 1 to ``maximumObjectByteCount`` bytes.
    ///   - key: The key.
    /// - Throws: As ``insert(forKey:byteCount:_:)``.
    /// - Complexity: O(`bytes.count`).
    @inlinable
    public func insert(_ bytes: some Collection<UInt8>, forKey key: Key) throws {
        let count = bytes.count
        let sizeClass = try Self.sizeClass(for: count)
        if let done = try bytes.withContiguousStorageIfAvailable({ buffer in
            try store(UnsafeRawBufferPointer(buffer), sizeClass: sizeClass, forKey: key)
        }) {
            return done
        }
        try insert(forKey: key, byteCount: count) { $0.copyBytes(from: bytes) }
    }

    /// The size class of an object, or the error for a size out of range.
    @usableFromInline
    static func sizeClass(for byteCount: Int) throws(VolatileCacheError) -> Int {
        guard byteCount > 0 else { throw .invalidByteCount(byteCount) }
        guard let sizeClass = SlabSizeClass.index(for: byteCount) else {
            throw .objectTooLarge(requestedBytes: byteCount, maximumBytes: Self.maximumObjectByteCount)
        }
        return sizeClass
    }

    /// Copies `bytes` into a slot and records it (under the shard lock: a copy of at most
    /// 2 KiB). Inlined, so that the dictionary is specialized for the key type.
    @inlinable
    func store(_ bytes: UnsafeRawBufferPointer, sizeClass: Int, forKey key: Key) throws {
        let shard = shard(for: key)
        var garbage: [SlabPage] = []
        defer { if !garbage.isEmpty { release(garbage) } }
        let arena = arena
        let (hotLimit, limits, regroup) = (hotPagesPerShard, limitsPerShard, regroupsByRecency)
        try shard.withLock { state throws(VolatileCacheError) in
            let slot = try state.place(bytes, sizeClass: sizeClass, arena: arena)
            if let old = state.entries.updateValue(slot, forKey: key) {
                state.forget(old, garbage: &garbage)
            }
            state.enforceLimits(limits, garbage: &garbage)
            state.enforceHotBudget(hotLimit, regroup: regroup, garbage: &garbage)
        }
    }

    /// Removes the entry for `key` (its slot is reused once no reader is on its page).
    /// - Parameter key: The key.
    /// - Returns: True if there was an entry (even one whose page the kernel dropped).
    @discardableResult
    public func removeValue(forKey key: Key) -> Bool {
        var garbage: [SlabPage] = []
        defer { release(garbage) }
        return shard(for: key).withLock { state in
            guard let old = state.entries.removeValue(forKey: key) else { return false }
            state.forget(old, garbage: &garbage)
            return true
        }
    }

    /// Removes every entry and gives the slab pages back: every shard's pages are freed
    /// together, coalesced into runs of adjacent pages (one `madvise` per run), the arena's
    /// recycled extents are released, and the metadata tables (the shards' and the arena's)
    /// are freed or shrunk, so resident memory comes back.
    /// Pages a reader is on right now are given back when their last reader leaves them.
    /// - Complexity: O(entries + pages).
    public func removeAll() {
        // All shards' pages are released together: the shards take pages from the arena in
        // turn, so one shard's pages alone are scattered runs (thousands of `madvise` calls and
        // as many free-block fragments in the arena's tables); together they coalesce.
        var given: [SlabPage] = []
        for shard in shards {
            let (pages, old) = shard.withLock { state -> ([SlabPage], SmallShard<Key>) in
                var released: [SlabPage] = []
                var kept: [SlabPage] = []
                for case let page? in state.pages {
                    if page.readers.load(ordering: .acquiring) == 0 { released.append(page) } else { kept.append(page) }
                }
                for page in state.orphans {
                    if page.readers.load(ordering: .acquiring) == 0 { released.append(page) } else { kept.append(page) }
                }
                let old = state
                state = SmallShard()
                // Pages a reader is on stay owned by the shard, out of use, until it leaves them.
                state.orphans = kept
                return (released, old)
            }
            _ = consume old  // the tables are freed outside the lock
            given += pages
        }
        SlabPage.releaseCoalesced(given, arena: arena)
        given = []  // before the trim
        arena.trimRecycledExtents()
        // The dictionaries' and page records' storage: hand freed heap back to the kernel.
        _ = vc_malloc_trim()
    }

    /// Whether the cache holds an entry for `key` (its page may since have been dropped if
    /// it is volatile; access decides).
    /// - Parameter key: The key.
    /// - Returns: True if the cache holds an entry for `key`.
    public func contains(_ key: Key) -> Bool {
        shard(for: key).withLock { state in
            guard let slot = state.entries[key] else { return false }
            return state.pages[Int(slot.page)]?.epoch == slot.epoch
        }
    }

    /// The number of entries (including those whose volatile page the kernel dropped, until
    /// they are accessed).
    public var count: Int {
        shards.reduce(0) { $0 + $1.withLock { $0.entries.count } }
    }

    /// Makes every slab page that no reader is on volatile now (one `MADV_FREE` per page).
    /// - Returns: The bytes made volatile.
    /// - Complexity: O(pages) system calls.
    @discardableResult
    public func shed() -> Int {
        var pages = 0
        for shard in shards {
            pages += shard.withLock { state in state.unpinAll() }
        }
        return pages * arena.pageSize
    }

    /// Gives pages taken out of a shard back to the arena, outside the shard's lock: one page
    /// on its own, several (an eviction) with adjacent pages coalesced into runs.
    @usableFromInline
    func release(_ pages: [SlabPage]) {
        if pages.count == 1 { pages[0].release() } else if pages.count > 1 { SlabPage.releaseCoalesced(pages, arena: arena) }
    }
}

/// Where a small object is: its page, the page's epoch when it was placed (a different epoch
/// now means the page was dropped since), the slot's offset in the page, and the object's
/// size. 12 bytes.
@usableFromInline
struct SmallSlot {
    @usableFromInline var page: UInt32
    @usableFromInline var epoch: UInt32
    @usableFromInline var offset: UInt16
    @usableFromInline var byteCount: UInt16

    @usableFromInline
    init(page: UInt32, epoch: UInt32, offset: UInt16, byteCount: UInt16) {
        self.page = page
        self.epoch = epoch
        self.offset = offset
        self.byteCount = byteCount
    }
}
