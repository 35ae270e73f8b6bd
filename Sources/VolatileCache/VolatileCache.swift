public import VolatileMemory
public import Synchronization

/// A cache for regenerable byte objects whose memory the kernel may take back.
///
/// Recently used entries stay in ordinary memory (the *hot set*, bounded by
/// ``Configuration/hotByteLimit``); a hit on them costs a shard lock and no system call.
/// Older entries become *volatile* (`MADV_FREE`): the kernel may drop their pages under
/// memory pressure, without swap. On access a volatile entry is re-pinned; if pages were
/// dropped, its regenerator runs again (only for the dropped pages if it can).
///
/// ```text
///            regenerate                 beyond hot budget / shed()
///   miss ───────────────► hot (pinned) ─────────────────────────► volatile (MADV_FREE)
///                          ▲    ▲                                  │        │
///                          │    └────────── hit: re-pin, intact ◄──┘        │ kernel drops pages
///                          └──── regenerate (all, or dropped pages) ◄─ dropped
/// ```
///
/// ```swift
/// let cache = try VolatileCache<String>()
/// let checksum = try cache.withBytes(forKey: "a.png", regenerate: { context in
///     try context.write(byteCount: 1 << 20) { pixels in decode("a.png", into: pixels) }
/// }) { pixels in crc32(pixels) }
/// ```
///
/// The cache is safe to use from any thread and from async code. No regenerator or body runs
/// under one of its locks. Concurrent misses on one key run one regeneration (single flight).
public final class VolatileCache<Key: Hashable & Sendable>: Sendable {
    /// The configuration the cache was created with.
    public let configuration: Configuration
    /// The memory layer the cache allocates from.
    public let arena: VolatileArena
    /// The largest object a regenerator may write, in bytes.
    public let maximumObjectByteCount: Int

    @usableFromInline let shards: [CacheShard<Key>]
    @usableFromInline let shardMask: Int
    /// Global access clock: stamps give an LRU order across shards.
    @usableFromInline let clock = Atomic<UInt64>(1)
    @usableFromInline let totals = Totals()
    /// Serializes demotion and eviction passes (never taken inside a shard lock).
    let maintenance = Mutex<Void>(())
    let monitor = Mutex<MemoryPressureMonitor?>(nil)

    /// Creates a cache with its own arena.
    /// - Parameter configuration: Hot budget, limits, arena configuration.
    /// - Throws: ``VolatileCacheError/memoryUnavailable(_:)`` if the arena cannot be created
    ///   (no `MADV_FREE`), or a `MemoryPressureMonitorError` if
    ///   ``Configuration/monitorsMemoryPressure`` is set and no source can be opened.
    public convenience init(configuration: Configuration = .default) throws {
        let arena: VolatileArena
        do {
            arena = try VolatileArena(configuration: configuration.arena)
        } catch {
            throw VolatileCacheError.memoryUnavailable(error)
        }
        try self.init(arena: arena, configuration: configuration)
    }

    /// Creates a cache on an existing arena (which may be shared with other caches).
    /// - Parameters:
    ///   - arena: The arena to allocate from; ``Configuration/arena`` is ignored.
    ///   - configuration: Hot budget and limits.
    /// - Throws: A `MemoryPressureMonitorError` if ``Configuration/monitorsMemoryPressure``
    ///   is set and no source can be opened.
    public init(arena: VolatileArena, configuration: Configuration = .default) throws {
        self.configuration = configuration
        self.arena = arena
        self.maximumObjectByteCount = min(
            configuration.maximumObjectByteCount ?? arena.maximumExtentByteCount, arena.maximumExtentByteCount)
        var count = 1
        while count < max(1, configuration.shardCount) { count <<= 1 }
        self.shards = (0..<count).map { _ in CacheShard<Key>() }
        self.shardMask = count - 1
        if configuration.monitorsMemoryPressure {
            try startPressureMonitoring()
        }
    }

    deinit {
        monitor.withLock { $0 }?.stop()
    }

    @inlinable
    func shard(for key: Key) -> CacheShard<Key> {
        // Mix the hash so that keys with regular hashes spread over the shards.
        let hash = UInt(bitPattern: key.hashValue) &* 0x9E37_79B9_7F4A_7C15
        return shards[Int(truncatingIfNeeded: hash >> 32) & shardMask]
    }

    @inlinable
    func tick() -> UInt64 {
        clock.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    // MARK: - Insertion and removal

    /// Inserts (or replaces) an object, written straight into cache memory. The new entry is
    /// hot; a replaced entry that is pinned is freed when its last pin ends.
    /// - Parameters:
    ///   - key: The key.
    ///   - byteCount: The object's size, at most ``maximumObjectByteCount``.
    ///   - cost: The entry's cost for ``Configuration/totalCostLimit``; nil for `byteCount`.
    ///   - write: Fills the buffer (do not escape the pointer).
    /// - Throws: ``VolatileCacheError/objectTooLarge(requestedBytes:maximumBytes:)``,
    ///   ``VolatileCacheError/invalidByteCount(_:)``, ``VolatileCacheError/memoryUnavailable(_:)``,
    ///   or what `write` throws (then nothing is inserted).
    public func insert(
        forKey key: Key, byteCount: Int, cost: Int? = nil, _ write: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        var context = makeContext(key: key, previous: nil, droppedPages: nil)
        try context.write(byteCount: byteCount, cost: cost) { buffer in
            try write(buffer)
            return buffer.count
        }
        let product = try context.finish()
        let entry = CacheEntry<Key>(key: key, phase: .loading, flight: nil)
        let shard = shard(for: key)
        var garbage = Garbage()
        shard.state.withLock { state in
            if let old = state.entries[key] { detach(old, from: &state, into: &garbage) }
            state.entries[key] = entry
            state.counters.insertions += 1
        }
        garbage.dispose()
        install(entry, extent: product.extent, cost: product.cost, in: shard, holding: false)
        enforceLimits(protecting: entry)
    }

    /// Inserts (or replaces) an object by copying bytes.
    /// - Parameters:
    ///   - bytes: The content.
    ///   - key: The key.
    ///   - cost: The entry's cost; nil for the byte count.
    /// - Throws: As ``insert(forKey:byteCount:cost:_:)``.
    public func insert(_ bytes: some Collection<UInt8>, forKey key: Key, cost: Int? = nil) throws {
        try insert(forKey: key, byteCount: bytes.count, cost: cost) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// Removes the entry for `key`. If it is pinned, its memory is freed when the last pin
    /// ends. A regeneration in progress for the key finishes, but its result is not cached.
    /// - Parameter key: The key.
    /// - Returns: True if there was an entry.
    @discardableResult
    public func removeValue(forKey key: Key) -> Bool {
        var garbage = Garbage()
        let found = shard(for: key).state.withLock { state in
            guard let entry = state.entries[key] else { return false }
            detach(entry, from: &state, into: &garbage)
            state.counters.removals += 1
            return true
        }
        garbage.dispose()
        return found
    }

    /// Removes every entry (pinned ones are freed when their pins end).
    /// - Complexity: O(entries).
    public func removeAll() {
        for shard in shards {
            var garbage = Garbage()
            shard.state.withLock { state in
                for entry in Array(state.entries.values) {
                    detach(entry, from: &state, into: &garbage)
                    state.counters.removals += 1
                }
            }
            garbage.dispose()
        }
    }

    /// Whether the cache holds an entry for `key` (its content may since have been dropped
    /// by the kernel if it is volatile; access decides). A first regeneration in progress
    /// does not count.
    /// - Parameter key: The key.
    public func contains(_ key: Key) -> Bool {
        shard(for: key).state.withLock { state in
            guard let entry = state.entries[key] else { return false }
            return entry.phase != .loading
        }
    }

    /// The number of entries (hot, volatile, and being moved between the two).
    /// - Complexity: O(shards).
    public var count: Int {
        shards.reduce(0) { sum, shard in sum + shard.state.withLock { $0.hot.count + $0.volatile.count + $0.busyCount } }
    }

    // MARK: - Internals shared by the access paths

    /// Takes an entry out of the cache (under its shard lock). Its extent goes to `garbage`
    /// unless readers hold it (the last one frees it) or a thread is working on it (that
    /// thread frees it when it sees `isRemoved`).
    func detach(_ entry: CacheEntry<Key>, from state: inout ShardState<Key>, into garbage: inout Garbage) {
        if state.entries[entry.key] === entry { state.entries[entry.key] = nil }
        guard !entry.isRemoved else { return }
        entry.isRemoved = true
        switch entry.list {
        case .hot: state.hot.remove(entry)
        case .volatile: state.volatile.remove(entry)
        case .none: break
        }
        entry.list = .none
        switch entry.phase {
        case .hot:
            totals.hotBytes.subtract(entry.footprint, ordering: .relaxed)
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.subtract(entry.cost, ordering: .relaxed)
            if entry.holds.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue == 0, let extent = entry.pinned.take() {
                garbage.add(extent)
            } else {
                totals.detachedPinnedBytes.add(entry.footprint, ordering: .relaxed)
            }
        case .volatile:
            totals.volatileBytes.subtract(entry.footprint, ordering: .relaxed)
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.subtract(entry.cost, ordering: .relaxed)
            if let extent = entry.volatile.take() { garbage.add(extent) }
        case .busy:
            // Demotion or re-pin in progress: counted until that thread sees `isRemoved`.
            state.busyCount -= 1
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.subtract(entry.cost, ordering: .relaxed)
        case .loading:
            break
        }
    }

    /// Makes a just-(re)generated entry hot, optionally with one hold for the caller, and
    /// ends its flight. If the entry was removed meanwhile, it stays out of the cache and the
    /// caller's hold (if any) frees it.
    @discardableResult
    func install(
        _ entry: CacheEntry<Key>, extent: consuming PinnedExtent, cost: Int?, in shard: CacheShard<Key>, holding: Bool
    ) -> (UnsafeRawPointer, Int) {
        let footprint = extent.pageCount * extent.pageSize
        let base = UnsafeRawPointer(extent.baseAddress)
        let byteCount = extent.byteCount
        // The entry is loading or busy: only this thread touches its extent until the lock below.
        entry.pinned = consume extent
        var garbage = Garbage()
        let flight: Flight? = shard.state.withLock { state in
            let flight = entry.flight
            entry.flight = nil
            if entry.phase == .busy && !entry.isRemoved { state.busyCount -= 1 }
            entry.base = base
            entry.byteCount = byteCount
            let oldCost = entry.cost
            let wasCounted = entry.phase == .busy
            entry.cost = cost ?? byteCount
            entry.footprint = footprint
            entry.phase = .hot
            if entry.isRemoved {
                if holding {
                    entry.holds.store(3, ordering: .releasing)
                    totals.detachedPinnedBytes.add(footprint, ordering: .relaxed)
                } else if let extent = entry.pinned.take() {
                    garbage.add(extent)
                }
                return flight
            }
            entry.stamp = tick()
            state.hot.pushNewest(entry)
            entry.list = .hot
            if holding { entry.holds.store(2, ordering: .releasing) }
            totals.hotBytes.add(footprint, ordering: .relaxed)
            if wasCounted {
                totals.cost.add(entry.cost - oldCost, ordering: .relaxed)
            } else {
                totals.entryCount.add(1, ordering: .relaxed)
                totals.cost.add(entry.cost, ordering: .relaxed)
            }
            return flight
        }
        garbage.dispose()
        flight?.finish(.ready)
        if totals.hotBytes.load(ordering: .relaxed) > configuration.hotByteLimit {
            enforceHotBudget(configuration.hotByteLimit)
        }
        return (base, byteCount)
    }

    /// Ends one reader's hold. The last reader of a removed entry frees its extent.
    @inlinable
    func release(_ entry: CacheEntry<Key>) {
        if entry.holds.subtract(2, ordering: .acquiringAndReleasing).newValue == 1 {
            freeDetached(entry)
        } else if totals.hotBytes.load(ordering: .relaxed) > configuration.hotByteLimit {
            enforceHotBudget(configuration.hotByteLimit)
        }
    }

    @usableFromInline
    func freeDetached(_ entry: CacheEntry<Key>) {
        totals.detachedPinnedBytes.subtract(entry.footprint, ordering: .relaxed)
        _ = entry.pinned.take()
    }
}

/// One lock shard: a dictionary and two intrusive LRU lists.
@usableFromInline
final class CacheShard<Key: Hashable & Sendable>: Sendable {
    @usableFromInline let state = Mutex(ShardState<Key>())
    init() {}
}

@usableFromInline
struct ShardState<Key: Hashable & Sendable> {
    @usableFromInline var entries: [Key: CacheEntry<Key>] = [:]
    @usableFromInline var hot = EntryList<Key>()
    var volatile = EntryList<Key>()
    /// Entries being demoted or re-pinned (in no list, still counted as entries).
    var busyCount = 0
    @usableFromInline var counters = ShardCounters()
}

/// Counters kept per shard under its lock (no shared cache line on the hit path).
@usableFromInline
struct ShardCounters {
    @usableFromInline var hotHits = 0
    var volatileHits = 0
    var misses = 0
    var droppedObjects = 0
    var droppedPages = 0
    var regenerations = 0
    var partialRegenerations = 0
    var regenerationFailures = 0
    var regenerationNanoseconds: Int64 = 0
    var evictions = 0
    var demotions = 0
    var insertions = 0
    var removals = 0
}

/// Cache-wide byte and entry totals, updated on state changes (never on a hot hit).
@usableFromInline
final class Totals: Sendable {
    @usableFromInline let hotBytes = Atomic<Int>(0)
    let volatileBytes = Atomic<Int>(0)
    let entryCount = Atomic<Int>(0)
    let cost = Atomic<Int>(0)
    /// Removed entries whose memory waits for their last pin to end.
    let detachedPinnedBytes = Atomic<Int>(0)
}
