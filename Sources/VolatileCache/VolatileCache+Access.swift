import Synchronization
import VolatileMemory

/// A counted hold on a hot entry's content (released with `VolatileCache.release(_:)`): the
/// slow paths' and long holds' protection (lock-free hits are protected by their read section
/// instead). Keeps the entry alive with a strong reference.
@usableFromInline
struct Hold<Key: Hashable & Sendable>: @unchecked Sendable {  // Immutable; the bytes are read-only and pinned while it exists.
    @usableFromInline let entry: CacheEntry<Key>
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let byteCount: Int

    @inlinable
    init(entry: CacheEntry<Key>, base: UnsafeRawPointer, byteCount: Int) {
        self.entry = entry
        self.base = base
        self.byteCount = byteCount
    }
}

/// What one look-up under the shard lock decided; the work happens after the lock.
enum LookupStep<Key: Hashable & Sendable>: ~Copyable {
    case hit(Hold<Key>)
    case absent
    case wait(Flight)
    case load(CacheEntry<Key>, Flight)
    case repin(CacheEntry<Key>, Flight, VolatileExtent)
    /// A swappable entry (issue 9): ordinary memory to swap back in and make hot.
    case swapIn(CacheEntry<Key>, Flight, PinnedExtent)
}

/// When a regenerator is offered to repair only the dropped pages.
@usableFromInline
enum RepairOffer {
    case never
    case always
    /// Typed values: their header is read back from the first page.
    case ifFirstPageSurvived

    func offers(_ droppedPages: [Int]) -> Bool {
        switch self {
        case .never: return false
        case .always: return true
        case .ifFirstPageSurvived: return droppedPages.first != 0
        }
    }
}

/// What re-pinning a volatile entry found.
enum RepinStep<Key: Hashable & Sendable>: ~Copyable {
    case hit(Hold<Key>)
    /// Pages were dropped: regenerate (all, or repair the surviving extent; nil when every
    /// page was gone and the extent was given back).
    case regenerate(CacheEntry<Key>, Flight, PinnedExtent?, droppedPages: [Int]?)
    /// Dropped and nothing to regenerate with: the entry is gone.
    case gone
    /// The re-pin failed (the entry is gone and its waiters got the error).
    case failed(VolatileCacheError)
}

/// One pass of an acquisition loop, after the look-up and any re-pin: what the loop does
/// next. The sync and async loops share it and differ only in how they wait for another
/// caller's regeneration and how they call the regenerator.
enum AcquireStep<Key: Hashable & Sendable>: ~Copyable {
    case hit(Hold<Key>)
    /// Missing or dropped, and the caller may not regenerate.
    case absent
    case wait(Flight)
    case regenerate(Regeneration<Key>)
}

/// A regeneration the caller claimed (a loading entry, or a dropped one to regenerate or
/// repair): its regenerator writes through `context`, then `VolatileCache.settle` installs
/// the work or abandons the entry.
struct Regeneration<Key: Hashable & Sendable>: ~Copyable {
    let entry: CacheEntry<Key>
    let flight: Flight
    var context: RegenerationContext<Key>
    /// When the regeneration began (its cost feeds issue 9's advisor).
    let start = ContinuousClock.now

    /// The flights running in the calling context, this one added: the task-local scope the
    /// regenerator runs in (the wait graph reads it).
    var scope: [ObjectIdentifier] { RegenerationScope.running + [ObjectIdentifier(flight)] }
}

extension VolatileCache {
    /// Calls `body` with the object's bytes, regenerating them first on a miss or a drop.
    ///
    /// A hit on a hot entry takes no lock and makes no system call. A volatile entry is
    /// re-pinned; if the kernel dropped some of its pages, `regenerate` runs (it may repair
    /// only those pages, see ``RegenerationContext/droppedPages``). Concurrent callers for the
    /// same key share one regeneration and all get its result or its error.
    ///
    /// - Parameters:
    ///   - key: The key.
    ///   - regenerate: Writes the object through the context. Runs with no cache lock held;
    ///     it may use the cache for other keys, but asking for `key` itself throws
    ///     ``VolatileCacheError/reentrantAccess``.
    ///   - body: Reads the bytes; they stay pinned (never dropped) until it returns. Do not
    ///     escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `regenerate` or `body` throws, or a ``VolatileCacheError``. Nothing is
    ///   cached when regeneration fails.
    // Disfavored: in async code the async overload wins even for a regenerator without
    // `await` (which would otherwise pick this one and block the thread on a waiter).
    @_disfavoredOverload
    @available(*, noasync, message: "blocks the thread while another caller regenerates; use the async overload (mark the regenerator async or add an await)")
    @inlinable
    public func withBytes<Result>(
        forKey key: Key,
        regenerate: (inout RegenerationContext<Key>) throws -> Void,
        _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        // The hot hit is inlined into the caller (specialized for its key type); everything
        // else goes through `acquire`.
        let hashed = HashedKey(key)
        if let result = try withHotBytes(hashed, body) { return result }
        let hold = try acquire(hashed, offersRepair: .always, canRegenerate: true, regenerate)!
        defer { release(hold) }
        return try body(UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount))
    }

    /// The lock-free hot hit shared by the sync `withBytes` overloads: inside a read section,
    /// look the key up in its shard's hot index, record the hit in this thread's stripe, run
    /// `body`. Returns nil (section left) when the key is not hot.
    @inlinable @inline(__always)
    func withHotBytes<Result>(
        _ hashed: HashedKey<Key>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result? {
        let shard = shard(for: hashed)
        let slot = ReadEpochs.enter(cache: reclaimer.tag)
        guard let record = shard.findHot(hashed) else {
            leaveReadSection(slot)
            return nil
        }
        if shard.recordHit(record, slot: slot) { drainReadBuffer(shard, stripe: slot.address.pointee.stripe) }
        // Not a `defer`: the compiler outlines a defer shared by the return and throw paths
        // into a call (about 8 instructions of a 250-instruction hit, measured with callgrind).
        let result: Result
        do {
            result = try body(UnsafeRawBufferPointer(start: record.pointee.base, count: record.pointee.byteCount))
        } catch {
            leaveReadSection(slot)
            throw error
        }
        leaveReadSection(slot)
        return result
    }

    /// Calls `body` with the object's bytes if the cache holds them, without regenerating.
    /// A volatile entry whose pages were dropped is removed and counts as a miss.
    /// - Parameters:
    ///   - key: The key.
    ///   - body: Reads the bytes. Do not escape the pointer.
    /// - Returns: What `body` returns, or nil on a miss.
    /// - Throws: What `body` throws, ``VolatileCacheError/memoryUnavailable(_:)`` if a
    ///   re-pin fails, ``VolatileCacheError/reentrantAccess``.
    @inlinable
    public func withBytes<Result>(forKey key: Key, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result? {
        let hashed = HashedKey(key)
        if let result = try withHotBytes(hashed, body) { return result }
        guard let hold = try acquire(hashed, offersRepair: .never, canRegenerate: false, { _ in }) else {
            return nil
        }
        defer { release(hold) }
        return try body(UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount))
    }

    /// The object's bytes, copied out, regenerating them first on a miss or a drop.
    /// - Parameters:
    ///   - key: The key.
    ///   - regenerate: As in ``withBytes(forKey:regenerate:_:)``.
    /// - Returns: A copy of the bytes.
    /// - Throws: As ``withBytes(forKey:regenerate:_:)``.
    /// - Complexity: O(byte count) for the copy, plus the regeneration on a miss.
    // Disfavored: in async code the async overload wins even for a regenerator without
    // `await` (which would otherwise pick this one and block the thread on a waiter).
    @_disfavoredOverload
    @available(*, noasync, message: "blocks the thread while another caller regenerates; use the async overload (mark the regenerator async or add an await)")
    public func bytes(forKey key: Key, regenerate: (inout RegenerationContext<Key>) throws -> Void) throws -> [UInt8] {
        try withBytes(forKey: key, regenerate: regenerate) { Array($0) }
    }

    /// The object's bytes, copied out, or nil on a miss (no regeneration).
    /// - Parameter key: The key.
    /// - Returns: A copy of the bytes, or nil.
    /// - Throws: As ``withBytes(forKey:_:)``.
    /// - Complexity: O(byte count) for the copy.
    public func bytes(forKey key: Key) throws -> [UInt8]? {
        try withBytes(forKey: key) { Array($0) }
    }

    /// Replays the thread's read-buffer stripe into the shard's recency clock if the shard
    /// lock is free now (a hit never waits for it).
    @usableFromInline @inline(never)
    func drainReadBuffer(_ shard: ShardPointer<Key>, stripe: Int) {
        let epoch = shards.epoch
        _ = shard.pointee.state.withLockIfAvailable { state in
            shard.drain(stripe: stripe, in: &state, epoch: epoch)
        }
    }

    // MARK: - The sync acquisition loop

    /// Gets a hold on the entry for `key`, waiting for or running its regeneration.
    /// - Returns: The hold, or nil when `canRegenerate` is false and the entry is missing or
    ///   was dropped.
    @usableFromInline
    func acquire(
        _ hashed: HashedKey<Key>, offersRepair: RepairOffer, canRegenerate: Bool,
        _ regenerate: (inout RegenerationContext<Key>) throws -> Void
    ) throws -> Hold<Key>? {
        let shard = shard(for: hashed)
        while true {
            switch try nextStep(hashed, in: shard, offersRepair: offersRepair, canRegenerate: canRegenerate) {
            case .hit(let hold): return hold
            case .absent: return nil
            case .wait(let other): try other.wait(forKey: hashed.key).get()
            case .regenerate(var regeneration):
                let outcome = Result {
                    try RegenerationScope.$running.withValue(regeneration.scope) { try regenerate(&regeneration.context) }
                }
                return try settle(regeneration, outcome, in: shard)
            }
        }
    }

    // MARK: - Steps shared with the async path

    /// The decision under the shard lock. A hot hit stamps and takes a counted hold; a
    /// `demoting` entry (unpublished, not yet unpinned) is revived.
    /// - Parameters:
    ///   - key: The key, hashed once by the caller (it also picked `shard` with that hash).
    ///   - canCreate: Whether a miss creates a loading entry for the caller to regenerate.
    func lookup(_ key: HashedKey<Key>, in shard: ShardPointer<Key>, canCreate: Bool) -> LookupStep<Key> {
        let epoch = shards.epoch
        var garbage = Garbage()
        defer { dispose(&garbage) }
        return shard.pointee.state.withLock { state -> LookupStep<Key> in
            // Every locked access counts for the adaptive policy (lock-free hits count when
            // their read buffer is drained).
            state.recency.recordAccess(hash: key.hash)
            guard let entry = state.entries[key] else {
                state.counters.misses += 1
                guard canCreate else { return .absent }
                let flight = Flight()
                let entry = CacheEntry(key: key.key, phase: .loading, flight: flight)
                state.store(entry, at: key)
                state.recency.noteEntryCount(state.entries.count)
                return .load(entry, flight)
            }
            // Buffered hits happened before this access: replay them first.
            shard.drain(stripe: nil, in: &state, epoch: epoch)
            if entry.phase == .demoting {
                entry.revive(hash: key.hash, stamp: state.nextStamp(epoch: epoch, publish: true), in: &state, index: shard, garbage: &garbage)
                totals.hotBytes.add(entry.footprint, ordering: .relaxed)
            }
            if let hold = Self.takeHold(entry, in: &state, epoch: epoch) { return .hit(hold) }
            switch entry.phase {
            case .hot, .demoting:
                fatalError("unreachable: a hot entry is a hit")
            case .volatile where entry.isSwappable:
                let flight = Flight()
                return .swapIn(entry, flight, entry.claimSwappable(flight: flight, in: &state))
            case .volatile:
                let flight = Flight()
                let extent = entry.claimForRepin(flight: flight, in: &state)
                totals.volatileBytes.subtract(entry.footprint, ordering: .relaxed)
                return .repin(entry, flight, extent)
            case .loading, .busy:
                return .wait(entry.flight!)
            }
        }
    }

    /// One pass of an acquisition loop: the look-up under the shard lock, then (outside it)
    /// the re-pin of a volatile entry, resolved into what the loop does next.
    /// - Throws: ``VolatileCacheError/memoryUnavailable(_:)`` when the re-pin fails.
    func nextStep(
        _ hashed: HashedKey<Key>, in shard: ShardPointer<Key>, offersRepair: RepairOffer, canRegenerate: Bool
    ) throws(VolatileCacheError) -> AcquireStep<Key> {
        switch lookup(hashed, in: shard, canCreate: canRegenerate) {
        case .hit(let hold):
            return .hit(hold)
        case .absent:
            return .absent
        case .wait(let other):
            return .wait(other)
        case .load(let loading, let own):
            return .regenerate(Regeneration(entry: loading, flight: own, context: makeContext(key: hashed.key, previous: nil, droppedPages: nil)))
        case .swapIn(let busy, _, let extent):
            swapIn(extent)
            return .hit(install(busy, extent: extent, cost: busy.cost, in: shard, holding: true, countingVolatileHit: true)!)
        case .repin(let busy, let own, let extent):
            switch repin(busy, flight: own, extent: extent, in: shard, offersRepair: offersRepair, canRegenerate: canRegenerate) {
            case .hit(let hold):
                return .hit(hold)
            case .gone:
                return .absent
            case .failed(let error):
                throw error
            case .regenerate(let dropped, let own, let previous, let pages):
                let context = makeContext(key: hashed.key, previous: previous, droppedPages: pages)
                return .regenerate(Regeneration(entry: dropped, flight: own, context: context))
            }
        }
    }

    /// Re-pins a volatile entry that `lookup` made busy for this thread (outside the lock)
    /// and decides what follows.
    func repin(
        _ entry: CacheEntry<Key>, flight: Flight, extent: consuming VolatileExtent, in shard: ShardPointer<Key>,
        offersRepair: RepairOffer, canRegenerate: Bool
    ) -> RepinStep<Key> {
        // mincore pre-check: when every page is gone there is nothing to detect or keep.
        // Give the extent back and let the regenerator allocate with `zeroFilled: false`,
        // which may get a recycled extent that is still resident (no fault per page).
        if extent.residentPageCount() == 0 {
            let pageCount = extent.pageCount
            _ = consume extent
            noteKernelDrop()
            shard.pointee.state.withLock { state in
                state.counters.droppedObjects += 1
                state.counters.droppedPages += pageCount
                if !canRegenerate { state.counters.misses += 1 }
            }
            guard canRegenerate else {
                abandon(entry, flight: flight, in: shard, error: nil)
                return .gone
            }
            return .regenerate(entry, flight, nil, droppedPages: nil)
        }
        switch extent.pin() {
        case .pinned(let pinned):
            let report = pinned.report
            switch report {
            case .intact:
                // Counted under the same lock acquisition that makes the entry hot again.
                let hold = install(entry, extent: pinned, cost: entry.cost, in: shard, holding: true, countingVolatileHit: true)!
                return .hit(hold)
            case .dropped(let pages):
                noteKernelDrop()
                shard.pointee.state.withLock { state in
                    state.counters.droppedObjects += 1
                    state.counters.droppedPages += pages.count
                    if !canRegenerate { state.counters.misses += 1 }
                }
                guard canRegenerate else {
                    free(pinned)
                    abandon(entry, flight: flight, in: shard, error: nil)
                    return .gone
                }
                return .regenerate(entry, flight, pinned, droppedPages: offersRepair.offers(pages) ? pages : nil)
            case .fresh:
                guard canRegenerate else {
                    free(pinned)
                    abandon(entry, flight: flight, in: shard, error: nil)
                    return .gone
                }
                return .regenerate(entry, flight, pinned, droppedPages: nil)
            }
        case .failed(let discarded, let error):
            _ = consume discarded
            abandon(entry, flight: flight, in: shard, error: VolatileCacheError.memoryUnavailable(error))
            return .failed(.memoryUnavailable(error))
        }
    }

    /// Ends a regeneration the caller ran: installs the work and returns its hold, or, when
    /// the regenerator threw, abandons the entry and rethrows. Both acquisition loops end so.
    /// - Parameters:
    ///   - outcome: What the regenerator did.
    ///   - failsWaiters: Whether the waiters get the regenerator's error (false: they retry).
    func settle(
        _ regeneration: consuming Regeneration<Key>, _ outcome: Result<Void, any Error>, failsWaiters: Bool = true,
        in shard: ShardPointer<Key>
    ) throws -> Hold<Key> {
        let entry = regeneration.entry
        let flight = regeneration.flight
        let start = regeneration.start
        if case .failure(let error) = outcome {
            _ = consume regeneration  // The context's extents go back before the waiters wake.
            abandon(entry, flight: flight, in: shard, error: failsWaiters ? error : nil)
            throw error
        }
        return try complete(entry, flight: flight, context: regeneration.context, since: start, in: shard)
    }

    /// Validates a regenerator's work and installs it hot with one hold for the caller.
    func complete(
        _ entry: CacheEntry<Key>, flight: Flight, context: consuming RegenerationContext<Key>,
        since start: ContinuousClock.Instant, in shard: ShardPointer<Key>
    ) throws -> Hold<Key> {
        let product: Product
        do {
            product = try context.finish()
        } catch {
            abandon(entry, flight: flight, in: shard, error: error)
            throw error
        }
        let repaired = product.repaired
        let cost = product.cost
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        let byteCount = product.extent.byteCount
        shard.pointee.state.withLock { state in
            // Issue 9's advisor compares this with the swap-in cost (a repair costs less than the whole).
            if !repaired { entry.regenerationCost.add(nanoseconds: Double(nanoseconds), bytes: byteCount) }
            state.counters.regenerations += 1
            if repaired { state.counters.partialRegenerations += 1 }
            state.counters.regenerationNanoseconds += nanoseconds
        }
        let hold = install(entry, extent: product.extent, cost: repaired ? (cost ?? entry.cost) : cost, in: shard, holding: true)!
        enforceLimits(protecting: entry)
        return hold
    }

    /// Gives up on a loading or busy entry: it leaves the cache, and its waiters get `error`
    /// (or retry, when there is none).
    func abandon(_ entry: CacheEntry<Key>, flight: Flight, in shard: ShardPointer<Key>, error: (any Error)?) {
        var garbage = Garbage()
        shard.pointee.state.withLock { state in
            if error != nil { state.counters.regenerationFailures += 1 }
            entry.flight = nil
            detach(entry, from: &state, in: shard, into: &garbage)
        }
        dispose(&garbage)
        if let error { flight.finish(.failed(error)) } else { flight.finish(.ready) }
    }

    func makeContext(key: Key, previous: consuming PinnedExtent?, droppedPages: [Int]?) -> RegenerationContext<Key> {
        RegenerationContext(
            key: key, maximumByteCount: maximumObjectByteCount, arena: arena, previous: previous,
            droppedPages: droppedPages, reclaim: { [unowned self] in self.evictForMemory() })
    }
}
