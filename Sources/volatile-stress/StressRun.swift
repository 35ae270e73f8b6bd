// One unsandboxed run: build the objects' generator and the store, run the workers for the
// requested time with a progress line each second, then print the final lines.

import Glibc

/// The outcome counters of a run, and the exact final line.
struct StressSummary: Equatable {
    /// The counters, in the order of the lines.
    var pins = 0, dropsDetected = 0, regenerations = 0, corrupt = 0, errors = 0
    var strategy = ""

    /// `pins=<n> drops_detected=<n> regenerations=<n> corrupt=<n> errors=<n>`, as the final
    /// line and the progress lines show them.
    var counters: String {
        "pins=\(pins) drops_detected=\(dropsDetected) regenerations=\(regenerations) corrupt=\(corrupt) errors=\(errors)"
    }

    /// `STRESS pins=<n> drops_detected=<n> regenerations=<n> corrupt=<n> errors=<n> strategy=<name>`
    var line: String { "STRESS \(counters) strategy=\(strategy)" }

    /// 0 when every access was verified and none failed, 1 otherwise.
    var exitStatus: Int32 { corrupt == 0 && errors == 0 ? 0 : 1 }
}

/// Runs the workload in this process.
struct StressRun {
    let options: StressOptions

    /// Runs and prints the progress and final lines.
    ///
    /// - Returns: The exit status: 0 when nothing was corrupt and nothing failed.
    func run() -> Int32 {
        let generator = ContentGenerator(workingSetBytes: options.workingSetMiB << 20, seed: options.seed)
        switch options.store {
        case .heap:
            return run(HeapStore(generator: generator), generator)
        case .cache:
            do {
                return run(try CacheStore(generator: generator, options: options), generator)
            } catch {
                // Still end with the summary line, so that a script sees what happened.
                printError("volatile-stress: cannot create the cache: \(error)")
                var summary = StressSummary()
                summary.errors = 1
                summary.strategy = options.strategy.rawValue
                printLine(summary.line)
                return summary.exitStatus
            }
        }
    }

    private func run<Store: ObjectStore>(_ store: Store, _ generator: ContentGenerator) -> Int32 {
        let workload = StressWorkload(store: store, generator: generator, threadCount: options.threads, seed: options.seed)
        let progress = ProgressReporter(forced: options.progress)
        let deadline = ContinuousClock.now + .milliseconds(Int64(options.seconds * 1000))
        let threads = workload.start()
        // Sampled every 10 ms: the hot set may overshoot its budget between two demotion
        // passes, and that is what a memory limit sees.
        var peakHot = 0
        var peakPinned = 0
        progress.waitUntil(deadline, sample: {
            let statistics = store.statistics()
            peakHot = max(peakHot, statistics.hotBytes)
            peakPinned = max(peakPinned, statistics.pinnedBytes)
        }) {
            let statistics = store.statistics()
            progress.report(
                workload.summary(statistics, strategy: store.strategyName).counters + " hot_mib=\(statistics.hotBytes >> 20)"
                    + " volatile_mib=\(statistics.volatileBytes >> 20) rss_mib=\(residentMiB())")
        }
        workload.stop()
        workload.join(threads)
        store.stop()
        let elapsed = progress.elapsedSeconds

        for problem in workload.recordedProblems {
            printError("volatile-stress: \(problem)")
        }
        let statistics = store.statistics()
        let summary = workload.summary(statistics, strategy: store.strategyName)
        var details = [
            ("keys", generator.keyCount),
            ("working_set_mib", generator.totalBytes >> 20),
            ("threads", options.threads),
            ("milliseconds", Int(elapsed * 1000)),
            ("generations", statistics.generations),
            ("hot_mib", statistics.hotBytes >> 20),
            ("volatile_mib", statistics.volatileBytes >> 20),
            ("peak_hot_mib", peakHot >> 20),
            ("peak_pinned_mib", peakPinned >> 20),
            ("rss_mib", residentMiB()),
        ]
        details += statistics.extra
        printLine("STATS " + details.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
        printLine(summary.line)
        return summary.exitStatus
    }
}
