// The async access path: the same steps as the sync one, but waiters suspend instead of
// blocking a thread, and the regenerator may suspend (it writes into pinned cache memory
// that no one else can see until it returns).
//
// Cancellation: a cancelled waiter resumes alone with `CancellationError`. If the task that
// runs the regenerator is cancelled and the regeneration fails, the other waiters are not
// given its `CancellationError`: they retry, and one of them regenerates.
extension VolatileCache {
    /// Calls `body` with the object's bytes, regenerating them first (asynchronously) on a
    /// miss or a drop. See ``withBytes(forKey:regenerate:_:)`` for the behaviour.
    /// - Parameters:
    ///   - key: The key.
    ///   - isolation: The caller's actor; the closures run there.
    ///   - regenerate: Writes the object through the context; may suspend.
    ///   - body: Reads the bytes. Do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `regenerate` or `body` throws, a ``VolatileCacheError``, or
    ///   `CancellationError` when this task is cancelled while waiting for another's regeneration.
    public func withBytes<Result>(
        forKey key: Key,
        isolation: isolated (any Actor)? = #isolation,
        regenerate: (inout RegenerationContext<Key>) async throws -> Void,
        _ body: (UnsafeRawBufferPointer) throws -> Result
    ) async throws -> Result {
        let hold = try await acquire(key, offersRepair: .always, regenerate)
        defer { release(hold) }
        return try body(UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount))
    }

    /// The object's bytes, copied out, regenerating them first (asynchronously) if needed.
    /// - Parameters:
    ///   - key: The key.
    ///   - isolation: The caller's actor.
    ///   - regenerate: Writes the object through the context; may suspend.
    /// - Returns: A copy of the bytes.
    /// - Throws: As ``withBytes(forKey:isolation:regenerate:_:)``.
    /// - Complexity: O(byte count) for the copy, plus the regeneration on a miss.
    public func bytes(
        forKey key: Key,
        isolation: isolated (any Actor)? = #isolation,
        regenerate: (inout RegenerationContext<Key>) async throws -> Void
    ) async throws -> [UInt8] {
        let hold = try await acquire(key, offersRepair: .always, regenerate)
        defer { release(hold) }
        return Array(UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount))
    }

    /// Pins the object's bytes, regenerating them first (asynchronously) if needed.
    /// - Parameters:
    ///   - key: The key.
    ///   - isolation: The caller's actor.
    ///   - regenerate: Writes the object through the context; may suspend.
    /// - Returns: The pin; the bytes stay pinned until it is dropped.
    /// - Throws: As ``withBytes(forKey:isolation:regenerate:_:)``.
    public func pinnedValue(
        forKey key: Key,
        isolation: isolated (any Actor)? = #isolation,
        regenerate: (inout RegenerationContext<Key>) async throws -> Void
    ) async throws -> PinnedValue {
        let hold = try await acquire(key, offersRepair: .always, regenerate)
        return PinnedValue(cache: self, hold: hold)
    }

    /// The async twin of the sync `acquire` (always regenerates on a miss): waiters suspend.
    func acquire(
        _ key: Key, offersRepair: RepairOffer,
        isolation: isolated (any Actor)? = #isolation,
        _ regenerate: (inout RegenerationContext<Key>) async throws -> Void
    ) async throws -> Hold<Key> {
        let hashed = HashedKey(key)
        let shard = shard(for: hashed)
        while true {
            switch try nextStep(hashed, in: shard, offersRepair: offersRepair, canRegenerate: true) {
            case .hit(let hold): return hold
            case .absent: fatalError("unreachable: a look-up that may regenerate never finds nothing")
            case .wait(let other): try await other.wait(forKey: key).get()
            case .regenerate(var regeneration):
                do {
                    try await RegenerationScope.$running.withValue(regeneration.scope) { try await regenerate(&regeneration.context) }
                } catch {
                    // A cancelled regenerating task fails alone: the waiters retry.
                    let cancelled = error is CancellationError || Task.isCancelled
                    return try settle(regeneration, .failure(error), failsWaiters: !cancelled, in: shard)
                }
                return try settle(regeneration, .success(()), in: shard)
            }
        }
    }
}
