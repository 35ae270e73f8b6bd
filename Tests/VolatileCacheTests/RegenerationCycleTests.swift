#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import VolatileSystem
@testable import VolatileCache

/// Issue 12, item 2: regenerators on different threads (or tasks) that ask for each other's
/// keys in a cycle. The caller whose wait would close the cycle gets
/// `VolatileCacheError.regenerationCycle`; every other caller proceeds, and every object is
/// cached with the right content.
///
/// The time limit only turns a regression (a deadlock) into a failure. It is generous: async
/// tests wait for a cooperative thread, and long synchronous tests running in parallel can
/// occupy both of this machine's for a minute (1 minute was exceeded once that way).
@Suite(.timeLimit(.minutes(10))) struct RegenerationCycleTests {
    /// What the regenerator of key `i` records about its inner request for key `i + 1`.
    final class Outcomes: Sendable {
        let cycles = LockedValue<[[VolatileCacheError.Key]]>([])
        let served = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
    }

    /// Blocks until `count` threads have arrived (all regenerators are running).
    final class ThreadBarrier: Sendable {
        let arrived = Atomic<Int>(0)
        let count: Int
        init(count: Int) { self.count = count }
        func arriveAndWait() {
            arrived.add(1, ordering: .sequentiallyConsistent)
            while arrived.load(ordering: .sequentiallyConsistent) < count { sched_yield() }
        }
    }

    /// Resumes every task once `count` of them have arrived.
    actor TaskBarrier {
        let count: Int
        var arrived = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        init(count: Int) { self.count = count }
        func arriveAndWait() async {
            arrived += 1
            if arrived == count {
                for continuation in waiting { continuation.resume() }
                waiting = []
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    /// Checks the outcome of an `n`-key cycle: exactly one caller saw the cycle, with the
    /// keys in order, and the others got the next key's bytes.
    private func check(_ outcomes: Outcomes, _ cache: VolatileCache<Int>, keys n: Int) throws {
        let cycles = outcomes.cycles.withLock { $0 }
        try #require(cycles.count == 1, "exactly one caller closes the cycle: \(cycles)")
        let cycle = cycles[0].map { $0.base as! Int }
        // Starts with the key asked for, follows "waits for", ends with the caller's own key.
        #expect(cycle.count == n)
        for (index, key) in cycle.enumerated() { #expect(key == (cycle[0] + index) % n) }
        #expect(outcomes.served.load(ordering: .relaxed) == n - 1)
        #expect(outcomes.wrong.load(ordering: .relaxed) == 0)
        for key in 0..<n { #expect(try cache.withBytes(forKey: key) { verify($0, seed: UInt64(key)) } == true) }
        #expect(cache.statistics.regenerationFailures == 0)
    }

    @Test(arguments: [2, 3]) func syncThreadsInACycle(threads n: Int) throws {
        let cache = try makeCache()
        let outcomes = Outcomes()
        let barrier = ThreadBarrier(count: n)
        let failures = Atomic<Int>(0)
        runThreads(n) { index in
            do {
                try cache.withBytes(forKey: index, regenerate: { context in
                    barrier.arriveAndWait()  // every key is loading, on its own thread
                    do {
                        let next = (index + 1) % n
                        let good = try cache.withBytes(forKey: next, regenerate: generator(page)) { bytes in
                            verify(bytes, seed: UInt64(next))
                        }
                        outcomes.served.add(1, ordering: .relaxed)
                        if !good { outcomes.wrong.add(1, ordering: .relaxed) }
                    } catch VolatileCacheError.regenerationCycle(let keys) {
                        outcomes.cycles.withLock { $0.append(keys) }
                    }
                    try context.write(byteCount: page) { fill($0, seed: UInt64(index)); return $0.count }
                }) { _ in }
            } catch {
                failures.add(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        try check(outcomes, cache, keys: n)
    }

    @Test(arguments: [2, 3]) func asyncTasksInACycle(tasks n: Int) async throws {
        let cache = try makeCache()
        let outcomes = Outcomes()
        let barrier = TaskBarrier(count: n)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<n {
                group.addTask {
                    try await cache.withBytes(forKey: index, regenerate: { context in
                        await barrier.arriveAndWait()
                        do {
                            let next = (index + 1) % n
                            let bytes = try await cache.bytes(forKey: next) { inner in
                                await Task.yield()
                                try inner.write(byteCount: page) { fill($0, seed: UInt64(next)); return $0.count }
                            }
                            outcomes.served.add(1, ordering: .relaxed)
                            if !bytes.withUnsafeBytes({ verify($0, seed: UInt64(next)) }) {
                                outcomes.wrong.add(1, ordering: .relaxed)
                            }
                        } catch VolatileCacheError.regenerationCycle(let keys) {
                            outcomes.cycles.withLock { $0.append(keys) }
                        }
                        try context.write(byteCount: page) { fill($0, seed: UInt64(index)); return $0.count }
                    }) { _ in }
                }
            }
            try await group.waitForAll()
        }
        try check(outcomes, cache, keys: n)
    }

    /// A cycle whose closing caller does not catch the error: its regeneration fails, and
    /// the caller waiting for it gets the same error (nothing hangs; later calls work).
    @Test func anUncaughtCycleErrorFailsThatRegenerationOnly() throws {
        let cache = try makeCache()
        let barrier = ThreadBarrier(count: 2)
        let errors = LockedValue<[String]>([])
        runThreads(2) { index in
            do {
                try cache.withBytes(forKey: index, regenerate: { context in
                    barrier.arriveAndWait()
                    _ = try cache.bytes(forKey: 1 - index, regenerate: generator(page))
                    try context.write(byteCount: page) { fill($0, seed: UInt64(index)); return $0.count }
                }) { _ in }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        let texts = errors.withLock { $0 }
        #expect(texts.count == 2 && texts.allSatisfy { $0.hasPrefix("regeneration cycle") })
        #expect(try read(cache, 0, byteCount: page) && read(cache, 1, byteCount: page))
    }

    /// Nested regenerations on one thread that wait for another thread are not a cycle.
    @Test func waitingAcrossThreadsWithoutACycleIsAllowed() throws {
        let cache = try makeCache()
        let barrier = ThreadBarrier(count: 2)
        let results = Atomic<Int>(0)
        runThreads(2) { index in
            if index == 0 {
                // Regenerates 0, which needs 1 (thread 1's), which needs 2 (thread 1 regenerates it too).
                let ok = try? cache.withBytes(forKey: 0, regenerate: { context in
                    barrier.arriveAndWait()
                    _ = try cache.bytes(forKey: 1, regenerate: generator(page))
                    try context.write(byteCount: page) { fill($0, seed: 0); return $0.count }
                }) { verify($0, seed: 0) }
                if ok == true { results.add(1, ordering: .relaxed) }
            } else {
                let ok = try? cache.withBytes(forKey: 1, regenerate: { context in
                    barrier.arriveAndWait()
                    _ = try cache.bytes(forKey: 2, regenerate: generator(page))
                    try context.write(byteCount: page) { fill($0, seed: 1); return $0.count }
                }) { verify($0, seed: 1) }
                if ok == true { results.add(1, ordering: .relaxed) }
            }
        }
        #expect(results.load(ordering: .relaxed) == 2)
    }
}
