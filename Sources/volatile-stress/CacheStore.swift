// The store under test: a VolatileCache<Int>. Regeneration writes straight into cache memory;
// after a drop it repairs only the dropped pages when the cache offers that, so verification
// of the whole object also checks that the pages the cache called intact really were.

import Glibc
import Synchronization
import VolatileCache
import VolatileCacheTesting
import VolatileMemory

/// Objects in a `VolatileCache`, with optional drop injection and pressure monitoring.
final class CacheStore: ObjectStore, @unchecked Sendable {  // Immutable after init, or atomics.
    let cache: VolatileCache<Int>
    private let generator: ContentGenerator
    /// Per key: generated at least once (a later regenerator call is a regeneration). A lock
    /// is fine here: it is taken once per regenerator call, which costs a memcpy of the object.
    private let generated: Mutex<[Bool]>
    private let firstGenerations = Atomic<Int>(0)
    private let regenerations = Atomic<Int>(0)
    private let repairs = Atomic<Int>(0)
    private let injector: BackgroundDropInjector?
    private let monitor: MemoryPressureMonitor?
    private let shedding = ShedCounters()
    /// The fraction of volatile pages each injection round drops.
    static let injectedFraction = 0.05

    /// Creates the cache (and starts its pressure monitor and the drop injector if asked).
    ///
    /// - Throws: What `VolatileCache.init` throws (for example `userfaultfdUnavailable` with
    ///   `--strategy userfaultfd` where the kernel refuses it).
    init(generator: ContentGenerator, options: StressOptions) throws {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: options.hotBudgetMiB << 20)
        configuration.arena.strategy = DropDetectionStrategy(rawValue: options.strategy.rawValue)!
        switch options.volatility {
        case .automatic: configuration.volatility = .automatic
        case .always: configuration.volatility = .always
        case .never: configuration.volatility = .never
        }
        cache = try VolatileCache(configuration: configuration)
        self.generator = generator
        generated = Mutex([Bool](repeating: false, count: generator.keyCount))
        var monitor: MemoryPressureMonitor?
        if options.monitorsPressure {
            // The tool's own monitor does what `startPressureMonitoring()` does (shed at
            // `pressureLevelToShed`) and also counts what each shed demoted, which the
            // cache's statistics do not separate from hot-budget demotions.
            let cache = cache
            let shedding = shedding
            do {
                monitor = try MemoryPressureMonitor(source: .automatic) { event in
                    shedding.events.add(1, ordering: .relaxed)
                    guard event.level >= cache.configuration.pressureLevelToShed else { return }
                    let demoted = cache.shed()
                    shedding.sheds.add(1, ordering: .relaxed)
                    shedding.bytes.add(demoted, ordering: .relaxed)
                }
            } catch {
                // Not fatal: the cache works without shedding (STATS says pressure_events=-1).
                printError("volatile-stress: no memory-pressure monitor: \(error)")
            }
        }
        self.monitor = monitor
        if options.injectDropsPerSecond > 0 {
            // Capped at a day (the longest run): a tiny rate must not overflow the interval.
            let nanoseconds = min(1e9 / options.injectDropsPerSecond, 86_400e9)
            let injector = BackgroundDropInjector(
                cache: cache, fraction: Self.injectedFraction,
                interval: .nanoseconds(Int64(nanoseconds)), seed: options.seed)
            try injector.start()
            self.injector = injector
        } else {
            injector = nil
        }
    }

    var strategyName: String { cache.arena.detection.strategy.rawValue }

    func withObject<Result>(_ key: Int, _ body: (UnsafeRawBufferPointer) -> Result) throws -> Result {
        try cache.withBytes(forKey: key, regenerate: { context in
            countRegeneration(of: key)
            let size = generator.size(of: key)
            if context.droppedPages != nil {
                let pageSize = context.pageSize
                try context.repair { buffer, pages in
                    for page in pages {
                        let start = page * pageSize
                        generator.fill(key, into: buffer, range: start..<min(start + pageSize, buffer.count))
                    }
                }
                repairs.add(1, ordering: .relaxed)
            } else {
                try context.write(byteCount: size) { buffer in
                    generator.fill(key, into: buffer)
                    return size
                }
            }
        }, body)
    }

    /// Counts a regenerator call as a first generation or a regeneration.
    private func countRegeneration(of key: Int) {
        let seenBefore = generated.withLock { seen in
            defer { seen[key] = true }
            return seen[key]
        }
        if seenBefore {
            regenerations.add(1, ordering: .relaxed)
        } else {
            firstGenerations.add(1, ordering: .relaxed)
        }
    }

    func statistics() -> StoreStatistics {
        let figures = cache.statistics
        var statistics = StoreStatistics()
        statistics.dropsDetected = figures.droppedObjects
        statistics.regenerations = regenerations.load(ordering: .relaxed)
        statistics.generations = firstGenerations.load(ordering: .relaxed)
        statistics.hotBytes = figures.hotBytes
        statistics.volatileBytes = figures.volatileBytes
        statistics.pinnedBytes = figures.pinnedBytes
        statistics.extra = [
            ("repairs", repairs.load(ordering: .relaxed)),
            ("dropped_pages", figures.droppedPages),
            ("hot_hits", figures.hotHits),
            ("volatile_hits", figures.volatileHits),
            ("misses", figures.misses),
            ("cache_regenerations", figures.regenerations),
            ("regeneration_failures", figures.regenerationFailures),
            ("demotions", figures.demotions),
            ("evictions", figures.evictions),
            ("pressure_events", monitor == nil ? -1 : shedding.events.load(ordering: .relaxed)),
            ("sheds", shedding.sheds.load(ordering: .relaxed)),
            ("shed_mib", shedding.bytes.load(ordering: .relaxed) >> 20),
            ("injections", injector?.rounds ?? 0),
            ("injected_pages", injector?.droppedPages ?? 0),
            ("swappable_hits", figures.volatility.swappableHits),
            ("swap_ins", figures.volatility.swapInsObserved),
            ("swappable_mib", figures.volatility.swappableBytes >> 20),
            ("swappable_decisions", figures.volatility.swappableDecisions),
            ("volatile_decisions", figures.volatility.volatileDecisions),
            ("swap_in_ns_per_kib", figures.volatility.swapInNanosecondsPerByte.map { Int($0 * 1024) } ?? -1),
        ]
        return statistics
    }

    func stop() {
        injector?.stop()
        if let error = injector?.error {
            printError("volatile-stress: drop injection stopped: \(error)")
        }
        monitor?.stop()
    }

    /// What the pressure handler did, from the monitor thread.
    private final class ShedCounters: Sendable {
        let events = Atomic<Int>(0)
        let sheds = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
    }
}
