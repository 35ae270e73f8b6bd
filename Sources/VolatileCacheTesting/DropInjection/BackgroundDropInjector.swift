public import VolatileCache
public import VolatileMemory
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VolatileSystem

/// Drops a random fraction of an arena's volatile pages at a steady rate, on a background
/// thread, until stopped: a reproducible stand-in for memory pressure in stress tests.
///
/// Round `n` uses the `n`-th value of a SplitMix64 generator seeded with ``seed``, so a run with the
/// same seed and the same volatile extents at each round drops the same pages.
public final class BackgroundDropInjector: Sendable {
    /// The arena whose volatile pages are dropped.
    public var arena: VolatileArena { worker.settings.arena }
    /// The fraction of volatile pages dropped each round.
    public var fraction: Double { worker.settings.fraction }
    /// The time between rounds.
    public var interval: Duration { worker.settings.interval }
    /// The seed of the rounds' page choices.
    public var seed: UInt64 { worker.settings.seed }

    private let worker: Worker
    private let thread = LockedValue<pthread_t?>(nil)

    /// Creates an injector (not started) for a cache.
    /// - Parameters:
    ///   - cache: The cache whose volatile entries are dropped.
    ///   - fraction: The fraction of volatile pages dropped each round (0 to 1).
    ///   - interval: The time between rounds.
    ///   - seed: The seed of the page choices.
    public convenience init<Key>(cache: VolatileCache<Key>, fraction: Double, interval: Duration, seed: UInt64) {
        self.init(arena: cache.arena, fraction: fraction, interval: interval, seed: seed)
    }

    /// Creates an injector (not started) for an arena.
    /// - Parameters:
    ///   - arena: The arena.
    ///   - fraction: The fraction of volatile pages dropped each round (0 to 1).
    ///   - interval: The time between rounds.
    ///   - seed: The seed of the page choices.
    public init(arena: VolatileArena, fraction: Double, interval: Duration, seed: UInt64) {
        self.worker = Worker(Settings(arena: arena, fraction: fraction, interval: interval, seed: seed))
    }

    deinit { stop() }

    /// Rounds run so far.
    public var rounds: Int { worker.rounds.load(ordering: .acquiring) }
    /// Pages asked to be dropped so far.
    public var droppedPages: Int { worker.pages.load(ordering: .acquiring) }
    /// The first error a round met (`MADV_PAGEOUT` unsupported), if any; the thread stops then.
    public var error: VolatileMemoryError? { worker.control.withLock { $0.error } }

    /// Starts the background thread (no effect if it runs).
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the thread cannot be created.
    public func start() throws(VolatileMemoryError) {
        try thread.withLock { (handle) throws(VolatileMemoryError) in
            guard handle == nil else { return }
            worker.control.withLock { $0.stopRequested = false }
            let worker = self.worker
            let created: pthread_t
            switch startThread({ worker.run() }) {
            case .success(let thread): created = thread
            case .failure(let error): throw VolatileMemoryError.systemCall("pthread_create", error)
            }
            handle = created
        }
    }

    /// Stops the thread and waits for its round in progress to end. Safe to call more than once.
    public func stop() {
        guard let handle = thread.withLock({ handle in defer { handle = nil }; return handle }) else { return }
        worker.requestStop()
        pthread_join(handle, nil)
    }
}

/// What an injector is created with.
private struct Settings: Sendable {
    let arena: VolatileArena
    let fraction: Double
    let interval: Duration
    let seed: UInt64
}

/// The thread's state: the mutable parts behind `LockedValue` and `Atomic`; the condition variable
/// only sleeps between rounds and wakes early on stop.
private final class Worker: @unchecked Sendable {  // `sleepLock`/`wake` guard nothing but the sleep.
    let settings: Settings
    let rounds = Atomic<Int>(0)
    let pages = Atomic<Int>(0)
    let control = LockedValue(Control())
    private let sleepLock = Lock()
    private let wake = Condition()

    struct Control {
        var stopRequested = false
        var error: VolatileMemoryError?
    }

    init(_ settings: Settings) {
        self.settings = settings
    }

    func requestStop() {
        control.withLock { $0.stopRequested = true }
        sleepLock.withLock { wake.broadcast() }
    }

    private var stopRequested: Bool { control.withLock { $0.stopRequested } }

    func run() {
        var generator = SplitMix64(seed: settings.seed)
        // Resume the sequence where a previous start left it.
        for _ in 0..<rounds.load(ordering: .relaxed) { _ = generator.next() }
        while !stopRequested {
            sleepOneInterval()
            if stopRequested { break }
            do {
                let dropped = try settings.arena.dropVolatilePages(fraction: settings.fraction, seed: generator.next())
                pages.add(dropped, ordering: .releasing)
                rounds.add(1, ordering: .releasing)
            } catch {
                control.withLock { $0.error = error; $0.stopRequested = true }
            }
        }
    }

    private func sleepOneInterval() {
        sleepLock.withLock {
            if !stopRequested { wake.wait(releasing: sleepLock, timeout: settings.interval) }
        }
    }
}
