public import VolatileMemory
public import Synchronization
import VolatileSystem

/// A cache for regenerable byte objects whose memory the kernel may take back.
///
/// Recently used entries stay in ordinary memory (the *hot set*, bounded by
/// ``Configuration/hotByteLimit``); a hit on them takes no lock and makes no system call.
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

    @usableFromInline let shards: ShardTable<Key>
    /// ``Configuration/hotByteLimit``, where a release reads it.
    @usableFromInline let hotByteLimit: Int
    @usableFromInline let totals = Totals()
    /// Serializes eviction passes for the cost and count limits (never taken inside a shard lock).
    let maintenance = Lock()
    /// The LRU eviction and demotion scans' floors (see `VolatileCache+Eviction.swift`).
    let evictionFloors: ShardFloors
    let demotionFloors: ShardFloors
    let monitor = LockedValue<MemoryPressureMonitor?>(nil)
    /// Retired work waiting for a grace period (see `ReadEpochs.swift`).
    @usableFromInline let reclaimer = Reclaimer<Key>()
    /// Cost-aware volatility: the advisor and its schedule (`VolatileCache+Volatility.swift`).
    let volatilityState: VolatilityState
    /// ``Configuration/policy`` is ``CachePolicy/adaptive`` (see `VolatileCache+Policy.swift`).
    let isAdaptive: Bool
    /// The adaptive policy's resident capacity and drop bookkeeping.
    let residency = Residency()

    /// Creates a cache with its own arena.
    /// - Parameter configuration: Hot budget, limits, arena configuration.
    /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` for a field out of
    ///   range (see ``Configuration/validate(includingArena:)``),
    ///   ``VolatileCacheError/memoryUnavailable(_:)`` if the arena cannot be created
    ///   (no `MADV_FREE`), or a `MemoryPressureMonitorError` if
    ///   ``Configuration/monitorsMemoryPressure`` is set and no source can be opened.
    public convenience init(configuration: Configuration = .default) throws {
        try configuration.validate()
        try self.init(arena: .forCache(configuration.effectiveArena), configuration: configuration)
    }

    /// Creates a cache on an existing arena (which may be shared with other caches).
    /// - Parameters:
    ///   - arena: The arena to allocate from; ``Configuration/arena`` is ignored.
    ///   - configuration: Hot budget and limits.
    /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` for a field out of
    ///   range, or a `MemoryPressureMonitorError` if ``Configuration/monitorsMemoryPressure``
    ///   is set and no source can be opened.
    public init(arena: VolatileArena, configuration: Configuration = .default) throws {
        try configuration.validate(includingArena: false)
        self.configuration = configuration
        self.arena = arena
        self.maximumObjectByteCount = min(
            configuration.maximumObjectByteCount ?? arena.maximumExtentByteCount, arena.maximumExtentByteCount)
        var count = 1
        while count < max(1, configuration.shardCount) { count <<= 1 }
        self.shards = ShardTable(count: count)
        self.evictionFloors = ShardFloors(count: count)
        self.demotionFloors = ShardFloors(count: count)
        self.isAdaptive = configuration.policy == .adaptive
        if isAdaptive {
            for index in 0..<shards.count {
                shards[index].pointee.state.withLock { state in
                    state.recency.sketch = FrequencySketch(expectedEntries: 32)
                    state.segments.isEnabled = true
                    state.segments.usesCost = configuration.totalCostLimit != nil
                }
            }
        }
        self.hotByteLimit = configuration.hotByteLimit
        self.volatilityState = Self.makeVolatilityState(policy: configuration.volatility, arena: arena)
        if configuration.monitorsMemoryPressure {
            try startPressureMonitoring()
        }
    }

    deinit {
        monitor.withLock { $0 }?.stop()
        // No reader, pin or regeneration can outlive the cache (each holds a reference to
        // it), so no grace period is needed: parked work is dropped (its entries and extents
        // are freed with it), published records are freed.
        ReadEpochs.unregisterCollector(cache: reclaimer.tag)
        reclaimer.discardAll()
        for index in 0..<shards.count {
            let shard = shards[index]
            for record in shard.publishedRecords() {
                record.deinitialize(count: 1)
                record.deallocate()
            }
            let entries = shard.pointee.state.withLock { state in
                defer { state.entries.removeAll() }
                return Array(state.entries.values)
            }
            _ = entries
        }
        shards.destroy()
    }

    @inlinable
    func shard(for key: Key) -> ShardPointer<Key> {
        shard(for: HashedKey(key))
    }

    /// The key's shard, from the high bits of its hash (the shard's table uses the low bits).
    @inlinable
    func shard(for key: HashedKey<Key>) -> ShardPointer<Key> {
        let hash = UInt(bitPattern: key.hash) &* 0x9E37_79B9_7F4A_7C15
        return shards[Int(truncatingIfNeeded: hash >> 32) & shards.mask]
    }

    // MARK: - Insertion and removal

    /// Inserts (or replaces) an object, written straight into cache memory. The new entry is
    /// hot; a replaced entry that is pinned is freed when its last pin ends.
    /// - Parameters:
    ///   - key: The key.
    ///   - byteCount: The object's size, at most ``maximumObjectByteCount``.
    ///   - cost: The entry's cost for ``Configuration/totalCostLimit``; nil for `byteCount`.
    ///     0 or more; costs above ``Configuration/maximumCost`` count as that.
    ///   - volatility: What the entry may become once idle beyond the hot budget (see
    ///     ``VolatilityHint``); `.automatic` follows ``Configuration/volatility``.
    ///   - write: Fills the buffer (do not escape the pointer). It may hold stale bytes of a
    ///     recycled extent: write all of it.
    /// - Throws: ``VolatileCacheError/objectTooLarge(requestedBytes:maximumBytes:)``,
    ///   ``VolatileCacheError/invalidByteCount(_:)``, ``VolatileCacheError/memoryUnavailable(_:)``,
    ///   ``VolatileCacheError/invalidArgument(call:argument:value:reason:)`` for a negative
    ///   cost, or what `write` throws (then nothing is inserted).
    public func insert(
        forKey key: Key, byteCount: Int, cost: Int? = nil, volatility: VolatilityHint = .automatic,
        _ write: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        if let cost, cost < 0 {
            throw VolatileCacheError.invalidArgument(call: "VolatileCache.insert", argument: "cost", value: cost, reason: costRule)
        }
        var context = makeContext(key: key, previous: nil, droppedPages: nil)
        try context.write(byteCount: byteCount, cost: cost) { buffer in
            try write(buffer)
            return buffer.count
        }
        let product = try context.finish()
        // Stored as `loading` and published by `install` under a second lock: a look-up in
        // between waits on this flight (every loading entry has one).
        let entry = CacheEntry<Key>(key: key, phase: .loading, flight: Flight())
        entry.volatilityHint = volatility
        let hashed = HashedKey(key)
        let shard = shard(for: hashed)
        var garbage = Garbage()
        shard.pointee.state.withLock { state in
            if let old = state.entry(for: hashed) { detach(old, from: &state, in: shard, into: &garbage) }
            state.store(entry, at: hashed)
            state.recency.recordAccess(hash: hashed.hash)
            state.recency.noteEntryCount(state.entries.count)
        }
        dispose(&garbage)
        install(entry, extent: product.extent, cost: product.cost, in: shard, holding: false)
        enforceLimits(protecting: entry)
    }

    /// Inserts (or replaces) an object by copying bytes.
    /// - Parameters:
    ///   - bytes: The content.
    ///   - key: The key.
    ///   - cost: The entry's cost; nil for the byte count.
    ///   - volatility: The entry's ``VolatilityHint``.
    /// - Throws: As ``insert(forKey:byteCount:cost:volatility:_:)``.
    /// - Complexity: O(`bytes.count`).
    public func insert(_ bytes: some Collection<UInt8>, forKey key: Key, cost: Int? = nil, volatility: VolatilityHint = .automatic) throws {
        try insert(forKey: key, byteCount: bytes.count, cost: cost, volatility: volatility) { buffer in
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
        let hashed = HashedKey(key)
        let shard = shard(for: hashed)
        let found = shard.pointee.state.withLock { state in
            guard let entry = state.entry(for: hashed) else { return false }
            detach(entry, from: &state, in: shard, into: &garbage)
            return true
        }
        dispose(&garbage)
        return found
    }

    /// Removes every entry (pinned ones are freed when their pins end), and returns the
    /// arena's recycled extents to the kernel (`VolatileArena.trimRecycledExtents()`).
    /// - Complexity: O(entries).
    public func removeAll() {
        for index in shards.indices {
            let shard = shards[index]
            var garbage = Garbage()
            shard.pointee.state.withLock { state in
                for entry in Array(state.entries.values) {
                    detach(entry, from: &state, in: shard, into: &garbage)
                }
            }
            dispose(&garbage)
        }
        arena.trimRecycledExtents()
    }

    /// Whether the cache holds an entry for `key` (its content may since have been dropped
    /// by the kernel if it is volatile; access decides). A first regeneration in progress
    /// does not count.
    /// - Parameter key: The key.
    /// - Returns: True if the cache holds an entry for `key`.
    public func contains(_ key: Key) -> Bool {
        let hashed = HashedKey(key)
        return shard(for: hashed).pointee.state.withLock { state in
            guard let entry = state.entries[hashed] else { return false }
            return entry.phase != .loading
        }
    }

    /// The number of entries (hot, volatile, and being moved between the two; not those
    /// being generated for the first time). The same figure as ``Statistics/entryCount``.
    public var count: Int {
        totals.entryCount.load(ordering: .relaxed)
    }

    // MARK: - Internals shared by the access paths

    /// Takes an entry out of the cache (under its shard lock): out of the dictionary, the
    /// lists and the hot index. Its extent is freed by whoever finishes last (see
    /// ``CacheEntry``): the grace period of a hot or demoting entry (then the last counted
    /// hold, if any), or the thread that has it loading or busy. Volatile extents go to `garbage`.
    func detach(_ entry: CacheEntry<Key>, from state: inout ShardState<Key>, in shard: ShardPointer<Key>, into garbage: inout Garbage) {
        let key = HashedKey(entry.key)
        if let stored = state.entries[key], stored === entry {
            state.entries[key] = nil
            garbage.references.append(entry)
        }
        guard let phase = entry.detach(in: &state, index: shard, garbage: &garbage) else { return }
        switch phase {
        case .hot:
            // Lock-free readers may be reading it: the extent waits for a grace period, and
            // counts as pinned (detached) until it is freed.
            totals.hotBytes.subtract(entry.footprint, ordering: .relaxed)
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.wrappingSubtract(entry.cost, ordering: .relaxed)
            totals.detachedPinnedBytes.add(entry.footprint, ordering: .relaxed)
            garbage.retired.append(.removal(entry))
        case .demoting:
            // Its pending demotion frees the extent when the grace period ends.
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.wrappingSubtract(entry.cost, ordering: .relaxed)
        case .volatile:
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.wrappingSubtract(entry.cost, ordering: .relaxed)
            if let extent = entry.volatile.take() {
                totals.volatileBytes.subtract(entry.footprint, ordering: .relaxed)
                garbage.add(extent)
            } else if let extent = entry.pinned.take() {
                // Swappable (issue 9): ordinary memory no reader can see; freed after the lock.
                volatileStateDidStopBeingSwappable(footprint: entry.footprint)
                garbage.add(extent)
            }
        case .busy:
            // Demotion or re-pin in progress: that thread frees the extent when it sees `isRemoved`.
            totals.entryCount.subtract(1, ordering: .relaxed)
            totals.cost.wrappingSubtract(entry.cost, ordering: .relaxed)
        case .loading:
            break
        }
    }

    /// Frees what a locked pass collected (after the lock) and retires what lock-free
    /// readers may still see.
    func dispose(_ garbage: inout Garbage) {
        let retired = garbage.retired
        garbage.retired = []
        garbage.disposeImmediate()
        reclaimer.retire(retired, cache: self)
    }

    /// Makes a just-(re)generated entry hot, optionally with one hold for the caller, and
    /// ends its flight. If the entry was removed meanwhile, it stays out of the cache and the
    /// caller's hold (if any) frees it.
    /// - Returns: The caller's hold when `holding`.
    @discardableResult
    func install(
        _ entry: CacheEntry<Key>, extent: consuming PinnedExtent, cost: Int?, in shard: ShardPointer<Key>, holding: Bool,
        countingVolatileHit: Bool = false
    ) -> Hold<Key>? {
        let footprint = extent.pageCount * extent.pageSize
        let base = UnsafeRawPointer(extent.baseAddress)
        let byteCount = extent.byteCount
        let hash = HashedKey(entry.key).hash
        // The entry is loading or busy: only this thread touches its extent until the lock below.
        entry.pinned = consume extent
        var garbage = Garbage()
        let epoch = shards.epoch
        let flight: Flight? = shard.pointee.state.withLock { state in
            if countingVolatileHit { state.counters.volatileHits += 1 }
            if entry.isRemoved {
                let flight = entry.installRemoved(base: base, byteCount: byteCount, footprint: footprint)
                if holding {
                    // The caller's hold frees it (no lock-free reader ever saw it).
                    entry.holds.store(3, ordering: .releasing)
                    totals.detachedPinnedBytes.add(footprint, ordering: .relaxed)
                } else if let extent = entry.pinned.take() {
                    garbage.add(extent)
                }
                return flight
            }
            let oldCost = entry.cost
            let wasCounted = entry.phase == .busy
            let newCost = cost ?? byteCount
            if holding {
                entry.holds.store(2, ordering: .releasing)
            }
            // Buffered hits happened before this install: replay them first, so they get
            // older stamps than the new entry.
            shard.drain(stripe: nil, in: &state, epoch: epoch)
            let flight = entry.install(
                base: base, byteCount: byteCount, footprint: footprint, cost: newCost, hash: hash,
                stamp: state.nextStamp(epoch: epoch, publish: true), in: &state, index: shard, garbage: &garbage)
            totals.hotBytes.add(footprint, ordering: .relaxed)
            if wasCounted {
                totals.cost.wrappingAdd(newCost &- oldCost, ordering: .relaxed)
            } else {
                totals.entryCount.add(1, ordering: .relaxed)
                totals.cost.wrappingAdd(newCost, ordering: .relaxed)
            }
            return flight
        }
        dispose(&garbage)
        flight?.finish(.ready)
        if totals.hotBytes.load(ordering: .relaxed) > hotByteLimit {
            enforceHotBudget()
        }
        enforceResidentCapacity()
        guard holding else { return nil }
        return Hold(entry: entry, base: base, byteCount: byteCount)
    }

    /// Takes a counted hold on a hot entry (under its shard lock): stamps it, counts the hit.
    static func takeHold(_ entry: CacheEntry<Key>, in state: inout ShardState<Key>, epoch: EpochPointer) -> Hold<Key>? {
        guard entry.phase == .hot else { return nil }
        entry.stamp = state.nextStamp(epoch: epoch, publish: false)
        // Holds are added only under the shard lock (see `CacheEntry`): relaxed is enough.
        entry.holds.wrappingAdd(2, ordering: .relaxed)
        state.counters.hotHits &+= 1
        return Hold(entry: entry, base: entry.base.unsafelyUnwrapped, byteCount: entry.byteCount)
    }

    /// Ends one counted hold, without the shard lock. The last reader of a removed entry
    /// frees its extent; a release that leaves the hot set over budget demotes.
    @usableFromInline
    func release(_ hold: Hold<Key>) {
        let remaining = hold.entry.holds.wrappingSubtract(2, ordering: .acquiringAndReleasing).newValue
        if remaining == 0 {
            if totals.hotBytes.load(ordering: .relaxed) > hotByteLimit { enforceHotBudget() }
        } else if remaining == 1 {
            freeDetached(hold.entry)
        }
    }

    /// Frees a removed entry's extent once no one may read it any more.
    func freeDetached(_ entry: CacheEntry<Key>) {
        totals.detachedPinnedBytes.subtract(entry.footprint, ordering: .relaxed)
        _ = entry.pinned.take()
    }
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
    /// Shed passes (``VolatileCache/shed()``, pressure) and the bytes they demoted.
    let sheds = Atomic<Int>(0)
    let shedBytes = Atomic<Int>(0)
}

extension VolatileArena {
    /// An arena of a cache's own: the failure to create one is the cache's error.
    /// - Throws: ``VolatileCacheError/memoryUnavailable(_:)`` with the memory layer's error.
    static func forCache(_ configuration: Configuration) throws(VolatileCacheError) -> VolatileArena {
        do {
            return try VolatileArena(configuration: configuration)
        } catch {
            throw .memoryUnavailable(error)
        }
    }
}
