import VolatileSystem

/// How a flight ended.
enum FlightOutcome: @unchecked Sendable {  // `any Error` values are sent once, to waiters.
    /// The entry is ready (or gone): waiters look the key up again.
    case ready
    /// The regeneration failed: every waiter gets the error.
    case failed(any Error)

    /// Returns for `.ready` (the waiter looks the key up again); throws a failed regeneration's error.
    func get() throws {
        if case .failed(let error) = self { throw error }
    }
}

/// The single-flight record of one key while it is loading, being re-pinned, or demoted.
/// Sync waiters block on a condition variable; async waiters suspend on continuations, and a
/// cancelled async waiter resumes alone (the others keep waiting).
final class Flight: @unchecked Sendable {  // All mutable state is behind `lock`.
    private let lock = Lock()
    private let ended = Condition()
    private var outcome: FlightOutcome?
    private var continuations: [Int: UnsafeContinuation<Void, Never>] = [:]
    private var cancelledEarly: Set<Int> = []
    private var nextWaiter = 0
    /// Callers blocked or suspended on the flight now (for tests that need every waiter in).
    private var waiting = 0

    init() {}

    private func locked<R>(_ body: () -> R) -> R {
        lock.withLock(body)
    }

    /// Ends the flight and wakes every waiter. Later calls are ignored.
    func finish(_ result: FlightOutcome) {
        let resumed: [UnsafeContinuation<Void, Never>] = locked {
            guard outcome == nil else { return [] }
            outcome = result
            ended.broadcast()
            defer {
                self.waiting -= continuations.count
                continuations = [:]
            }
            return Array(continuations.values)
        }
        for continuation in resumed { continuation.resume() }
    }

    /// Whether the flight has ended (read by the wait graph, under its lock).
    var hasEnded: Bool { locked { outcome != nil } }

    /// Checks that the caller may wait for this flight and records the wait in the wait graph.
    /// - Throws: ``VolatileCacheError/reentrantAccess`` when the calling context is running
    ///   this flight's own regeneration (it would wait for itself), or
    ///   ``VolatileCacheError/regenerationCycle(keys:)`` when the wait would close a cycle.
    private func beginWait<Key: Hashable & Sendable>(
        forKey key: Key
    ) throws(VolatileCacheError) -> RegenerationWaitGraph.Registration? {
        let running = RegenerationScope.running
        guard !running.isEmpty else { return nil }
        if running.contains(ObjectIdentifier(self)) { throw .reentrantAccess }
        return try RegenerationWaitGraph.shared.beginWait(for: self, key: VolatileCacheError.Key(key), from: running)
    }

    /// Blocks the calling thread until the flight ends.
    /// - Parameter key: The flight's key (named in a cycle error).
    /// - Throws: ``VolatileCacheError/reentrantAccess`` when the calling context is running
    ///   this flight's own regeneration (it would wait for itself), or
    ///   ``VolatileCacheError/regenerationCycle(keys:)`` when the flight waits, through other
    ///   threads' regenerations, for one the caller is running.
    func wait<Key: Hashable & Sendable>(forKey key: Key) throws(VolatileCacheError) -> FlightOutcome {
        let registration = try beginWait(forKey: key)
        defer { if let registration { RegenerationWaitGraph.shared.endWait(registration) } }
        return lock.withLock {
            waiting += 1
            while outcome == nil { ended.wait(releasing: lock) }
            waiting -= 1
            return outcome!
        }
    }

    /// The number of callers waiting for the flight to end now.
    var waiterCount: Int { locked { waiting } }

    /// Suspends until the flight ends or this task is cancelled (only this waiter resumes then).
    /// - Parameter key: The flight's key (named in a cycle error).
    /// - Throws: ``VolatileCacheError/reentrantAccess``,
    ///   ``VolatileCacheError/regenerationCycle(keys:)``, or `CancellationError`.
    func wait<Key: Hashable & Sendable>(forKey key: Key) async throws -> FlightOutcome {
        let registration = try beginWait(forKey: key)
        defer { if let registration { RegenerationWaitGraph.shared.endWait(registration) } }
        let id: Int = locked { nextWaiter += 1; return nextWaiter }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow: Bool = locked {
                    if outcome != nil || cancelledEarly.remove(id) != nil { return true }
                    continuations[id] = continuation
                    waiting += 1
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation: UnsafeContinuation<Void, Never>? = locked {
                if let continuation = continuations.removeValue(forKey: id) {
                    waiting -= 1
                    return continuation
                }
                if outcome == nil { cancelledEarly.insert(id) }
                return nil
            }
            continuation?.resume()
        }
        if let result = locked({ outcome }) { return result }
        throw CancellationError()
    }
}

/// The flights whose regenerators are running in the current task or thread (task-local, so
/// it follows both sync calls and child tasks), outermost first. Read only on the waiting
/// path, never on a hit; the wait graph takes its edges from it.
enum RegenerationScope {
    @TaskLocal static var running: [ObjectIdentifier] = []
}
