// The workload: worker threads access objects and verify every byte of each one.
//
// Each worker alternates two access streams: a sweep over all keys (workers start at evenly
// spaced keys), so the whole working set is touched over and over and really needs memory, and
// random picks among the first eighth of the keys, so that there is a hot set to keep.

import Glibc
import Synchronization
import VolatileMemory
import VolatileSystem  // SplitMix64

/// Runs the access loop on worker threads and counts outcomes.
final class StressWorkload<Store: ObjectStore>: @unchecked Sendable {  // State is atomics and a mutex.
    let store: Store
    let generator: ContentGenerator
    let threadCount: Int
    let seed: UInt64

    /// Accesses that returned the object (each is a pin of it).
    let pins = Atomic<Int>(0)
    /// Accesses whose bytes were wrong.
    let corrupt = Atomic<Int>(0)
    /// Accesses that threw.
    let errors = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)
    /// The first few problems, for standard error.
    private let problems = Mutex<[String]>([])
    private static var problemLimit: Int { 10 }

    init(store: Store, generator: ContentGenerator, threadCount: Int, seed: UInt64) {
        self.store = store
        self.generator = generator
        self.threadCount = threadCount
        self.seed = seed
    }

    /// Starts the workers; they run until ``stop()``.
    ///
    /// - Returns: The threads, for ``join(_:)``. When a thread cannot be created (EAGAIN under a
    ///   pids limit) the workers started so far keep running, the failure counts as an error,
    ///   and fewer threads are returned.
    func start() -> [pthread_t] {
        var threads: [pthread_t] = []
        for index in 0..<threadCount {
            switch startThread({ [self] in work(index) }) {
            case .success(let thread):
                threads.append(thread)
            case .failure(let error):
                errors.add(1, ordering: .relaxed)
                record("cannot start worker \(index): \(error)")
                return threads
            }
        }
        return threads
    }

    /// Asks the workers to finish their current access and return.
    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Waits for the workers.
    func join(_ threads: [pthread_t]) {
        for thread in threads { pthread_join(thread, nil) }
    }

    /// The recorded problems (at most ten).
    var recordedProblems: [String] { problems.withLock { $0 } }

    /// The outcome counters so far, with the store's.
    func summary(_ statistics: StoreStatistics, strategy: String) -> StressSummary {
        StressSummary(
            pins: pins.load(ordering: .relaxed), dropsDetected: statistics.dropsDetected, regenerations: statistics.regenerations,
            corrupt: corrupt.load(ordering: .relaxed), errors: errors.load(ordering: .relaxed), strategy: strategy)
    }

    private func work(_ index: Int) {
        let keyCount = generator.keyCount
        let hotCount = max(1, keyCount / 8)
        var random = SplitMix64(seed: seed ^ (UInt64(index) &* 0xA24B_AED4_963E_E407))
        var cursor = index * keyCount / threadCount
        var step = 0
        while !stopRequested.load(ordering: .relaxed) {
            let key: Int
            if step & 1 == 0 {
                key = cursor
                cursor = cursor + 1 == keyCount ? 0 : cursor + 1
            } else {
                key = Int(random.next() % UInt64(hotCount))
            }
            step += 1
            access(key)
        }
    }

    private func access(_ key: Int) {
        do {
            let mismatch = try store.withObject(key) { bytes in generator.verify(key, bytes) }
            pins.add(1, ordering: .relaxed)
            if let mismatch {
                corrupt.add(1, ordering: .relaxed)
                record("corrupt: \(mismatch)")
            }
        } catch {
            errors.add(1, ordering: .relaxed)
            record("error on key \(key): \(error)")
        }
    }

    private func record(_ problem: String) {
        problems.withLock { list in
            if list.count < Self.problemLimit { list.append(problem) }
        }
    }
}
