import VolatileSystem

/// Who waits for whom among the regenerations in progress, across threads, tasks and caches:
/// the one wait that would close a cycle is refused with
/// ``VolatileCacheError/regenerationCycle(keys:)`` instead of deadlocking.
///
/// Nodes are flights (one regeneration or re-pin each). An edge `F → G` means "the thread or
/// task running F's regenerator waits for G to end". A caller inside nested regenerations
/// (``RegenerationScope/running``, outermost first) blocks all of them, so its wait adds an
/// edge from each. Edges live only while the wait lasts.
///
/// ```text
///   thread 1 regenerates a, asks for b:   a → b
///   thread 2 regenerates b, asks for a:   b → a   closes a → b → a: thread 2 gets the error;
///                                                 its regenerator fails (or writes without a),
///                                                 flight b ends, thread 1 proceeds.
/// ```
///
/// The check and the insertion of the edges happen under one lock, so of two waits that close
/// a cycle together, the second sees the first's edge. Callers outside any regeneration (no
/// edge can start at them) never take the lock. Waits from unstructured tasks that do not
/// inherit task-locals (`Task.detached`) are invisible to it.
final class RegenerationWaitGraph: Sendable {
    /// One graph for the process: a cycle may run through several caches.
    static let shared = RegenerationWaitGraph()

    /// A flight someone waits for.
    fileprivate struct Target {
        let flight: Flight
        let key: VolatileCacheError.Key
        /// Registered waits on it (from any number of waiting flights).
        var waits: Int
    }

    fileprivate struct State {
        var targets: [ObjectIdentifier: Target] = [:]
        /// Waiting flight → flights it waits for → number of such waits.
        var edges: [ObjectIdentifier: [ObjectIdentifier: Int]] = [:]
    }

    private let state = LockedValue(State())

    /// A registered wait, to hand back to ``endWait(_:)``.
    struct Registration {
        fileprivate let waiters: [ObjectIdentifier]
        fileprivate let target: ObjectIdentifier
    }

    /// Records that the regenerations `waiters` are about to wait for `flight`.
    /// - Parameters:
    ///   - flight: The flight to wait for.
    ///   - key: Its key (for the error).
    ///   - waiters: The flights whose regenerators the caller is running; the wait is not
    ///     recorded when it is empty (nothing can wait for a caller that regenerates nothing).
    /// - Returns: The registration to end once the wait is over, or nil if none was made.
    /// - Throws: ``VolatileCacheError/regenerationCycle(keys:)`` when `flight` already waits,
    ///   directly or through others, for one of `waiters`. Nothing is recorded then.
    /// - Complexity: O(flights waited for), under the graph's lock.
    func beginWait(
        for flight: Flight, key: VolatileCacheError.Key, from waiters: [ObjectIdentifier]
    ) throws(VolatileCacheError) -> Registration? {
        guard !waiters.isEmpty else { return nil }
        let target = ObjectIdentifier(flight)
        return try state.withLock { (state) throws(VolatileCacheError) -> Registration in
            if let cycle = state.path(from: target, toAnyOf: Set(waiters)) {
                throw .regenerationCycle(keys: [key] + cycle.dropFirst().map { state.targets[$0]!.key })
            }
            state.targets[target, default: Target(flight: flight, key: key, waits: 0)].waits += 1
            for waiter in waiters { state.edges[waiter, default: [:]][target, default: 0] += 1 }
            return Registration(waiters: waiters, target: target)
        }
    }

    /// Removes a wait recorded by ``beginWait(for:key:from:)``.
    func endWait(_ registration: Registration) {
        // The target's flight is released outside the lock (its deinit is trivial, but the
        // lock stays a leaf).
        let released: Target? = state.withLock { state in
            for waiter in registration.waiters {
                state.edges[waiter]![registration.target]! -= 1
                if state.edges[waiter]![registration.target] == 0 {
                    state.edges[waiter]![registration.target] = nil
                    if state.edges[waiter]!.isEmpty { state.edges[waiter] = nil }
                }
            }
            state.targets[registration.target]!.waits -= 1
            guard state.targets[registration.target]!.waits == 0 else { return nil }
            return state.targets.removeValue(forKey: registration.target)
        }
        _ = released
    }

    /// The number of recorded waits (for tests: zero once every wait has ended).
    var waitCount: Int {
        state.withLock { $0.targets.values.reduce(0) { $0 + $1.waits } }
    }
}

extension RegenerationWaitGraph.State {
    /// A path of edges from `start` to one of `goals` (both ends included), depth first.
    /// Flights that have already ended are not followed: their edges are about to go (their
    /// waiters have been woken) and block no one.
    fileprivate func path(from start: ObjectIdentifier, toAnyOf goals: Set<ObjectIdentifier>) -> [ObjectIdentifier]? {
        var parent: [ObjectIdentifier: ObjectIdentifier] = [:]
        var seen: Set<ObjectIdentifier> = [start]
        var stack = [start]
        while let node = stack.popLast() {
            if goals.contains(node) {
                var path = [node]
                while let previous = parent[path.last!] { path.append(previous) }
                return path.reversed()
            }
            for next in (edges[node] ?? [:]).keys where !seen.contains(next) {
                if let target = targets[next], target.flight.hasEnded { continue }
                seen.insert(next)
                parent[next] = node
                stack.append(next)
            }
        }
        return nil
    }
}
