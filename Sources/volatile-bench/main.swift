// volatile-bench: micro benchmarks of the memory layer and the cache, each measured beside
// its baseline in the same run (interleaved), reported as ratios of medians.
//
//     swift run -c release volatile-bench [--quick] [--rounds N] [--only memory|hot|scaling|regen|small|churn]
//     volatile-bench --hit-loop N      # N single-thread hot hits only, for callgrind
//     volatile-bench --scaling-probe N # 1, 2 and 8 threads, N rounds: cache, private dictionaries, 16-shard Mutex
//     volatile-bench --churn-child N [T] # T threads missing under a count limit (what --only churn runs twice)
//     volatile-bench --demotion-loop N # N accesses that each demote a hot entry (hot budget), one thread
//
// The last line is machine-readable: `RATIO name=value ...` (lower is better, except the
// `hit_scaling_*` figures: throughput at N threads over 1 thread, higher is better).
#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

var rounds = 2000
var quick = false
var only: String? = nil
var arguments = CommandLine.arguments.dropFirst()

/// The positive number that follows `flag` on the command line (exits 2 without one).
@MainActor func positiveNumber(after flag: String) -> Int {
    guard let value = arguments.popFirst().flatMap({ Int($0) }), value > 0 else {
        printError("volatile-bench: \(flag) needs a positive number")
        exit(2)
    }
    return value
}

/// Runs one of the single-purpose modes (profiling loops, the churn child) and exits: 0, or 1
/// with the error.
func runMode(_ body: () throws -> Void) -> Never {
    do { try body() } catch {
        printError("volatile-bench: \(error)")
        exit(1)
    }
    exit(0)
}

while let argument = arguments.popFirst() {
    switch argument {
    case "--rounds":
        rounds = positiveNumber(after: argument)
    case "--quick":
        quick = true
    case "--only":
        guard let value = arguments.popFirst(), ["memory", "hot", "scaling", "regen", "small", "churn"].contains(value) else {
            printError("volatile-bench: --only needs memory, hot, scaling, regen, small or churn")
            exit(2)
        }
        only = value
    case "--hit-loop":
        let lookups = positiveNumber(after: argument)
        runMode { try runHitLoopForProfiling(lookups: lookups) }
    case "--regen-loop", "--regen-baseline":
        let count = positiveNumber(after: argument)
        runMode { try runRegenerationLoopForProfiling(rounds: count, baseline: argument == "--regen-baseline") }
    case "--mutex-loop":
        let lookups = positiveNumber(after: argument)
        runMode { runMutexLoopForProfiling(lookups: lookups) }
    case "--churn-child":
        // Issue 8: the child of `--only churn` (run with VOLATILE_READ_FENCES=1 by its parent);
        // an optional second number is the thread count (2 by default).
        let count = positiveNumber(after: argument)
        let threads = arguments.first.flatMap { Int($0) } == nil ? 2 : positiveNumber(after: argument)
        runMode { try ChurnBenchmarks.runChild(rounds: count, threads: threads) }
    case "--scaling-probe":
        // Issue 8: the cache, private dictionaries and the 16-shard Mutex, 1,024 keys, 1, 2 and
        // 8 threads, N rounds; wall-time scaling and CPU time per hit (robust when the machine is busy).
        let count = positiveNumber(after: argument)
        runMode { try runScalingProbe(rounds: count) }
    case "--small-loop":
        // Issue 14: 1M x 16 B inserted, then N rounds of lookups of every key, for perf/callgrind.
        let count = positiveNumber(after: argument)
        runMode { try SmallObjectBenchmarks.lookupLoop(rounds: count) }
    case "--demotion-loop":
        // N single-thread accesses over 4,096 keys with a hot budget of 512 pages: nearly every
        // one demotes the least recently used hot entry (for callgrind and --churn figures).
        let count = positiveNumber(after: argument)
        runMode { print("DEMOTION \(try ChurnBenchmarks.demotionLoop(operations: count)) ns per operation") }
    case "--help", "-h":
        print("usage: volatile-bench [--quick] [--rounds N] [--only memory|hot|scaling|regen|small|churn] | --hit-loop N | --scaling-probe N | --churn-child N [T] | --demotion-loop N")
        exit(0)
    default:
        printError("volatile-bench: unknown argument \(argument)")
        exit(2)
    }
}
if quick { rounds = min(rounds, 200) }
@MainActor func runs(_ name: String) -> Bool { only == nil || only == name }

var rows: [Row] = []
var notes: [String] = []
do {
    if runs("memory") {
        rows += try MemoryBenchmarks.run(rounds: rounds)
    }
    if runs("hot") {
        let hot = try benchmarkHotHits(lookupsPerRound: quick ? 200_000 : 1_000_000, rounds: quick ? 3 : 9)
        let hit = "withBytes hot hit"
        let twoThreadHit = "hot hit, 2 threads (ns/op/thread)"
        rows += [
            Row(
                name: "hot_hit_vs_mutex_dict", candidate: "\(hit), 256 B, \(hot.keyCount) keys", candidateNanoseconds: hot.cache.single,
                baseline: "Mutex dict lookup, value used after", baselineNanoseconds: hot.mutexDictionary.single, goal: 1.5),
            .context("hot_hit_vs_mutex_inlock", hit, hot.cache.single, vs: "Mutex dict, byte read inside lock", hot.mutexInLock.single),
            Row(
                name: "hot_hit_vs_nscache", candidate: hit, candidateNanoseconds: hot.cache.single,
                baseline: "NSCache object(forKey:)", baselineNanoseconds: hot.nsCache.single),
            .context("hot_hit_2_threads", twoThreadHit, hot.cache.twoThreads, vs: "Mutex dict lookup, 2 threads", hot.mutexDictionary.twoThreads),
            .context(
                "hot_hit_2_threads_inlock", twoThreadHit, hot.cache.twoThreads, vs: "Mutex dict in-lock read, 2 threads",
                hot.mutexInLock.twoThreads),
        ]
        notes.append(
            "Mutex<[Int: [UInt8]]> baselines: \"lookup\" is `let v = d.withLock { $0[key] }` with v used after the lock "
                + "(the goal's baseline); \"in-lock read\" reads the byte inside the lock (no retain; trivial bodies only).")
        notes.append(
            "2-thread scaling (throughput with 2 threads / with 1; 2.00 is perfect): cache "
                + format2(hot.cache.scaling) + "x, Mutex dict lookup " + format2(hot.mutexDictionary.scaling) + "x"
                + ", Mutex dict in-lock read " + format2(hot.mutexInLock.scaling) + "x"
                + ", NSCache " + format2(hot.nsCache.scaling) + "x"
                + "; threads waited for a CPU <= " + format2(100 * hot.twoThreadRunQueueFraction) + "% of a 2-thread run"
                + (hot.twoThreadRunQueueFraction > 0.05 ? " (machine busy: the 2-thread figures measure that, not contention)" : ""))
    }
    if runs("scaling") {
        let threadCounts = [1, 2, 4, 8]
        let scaling = try benchmarkScaling(
            keyCounts: [1024, 100_000], threadCounts: threadCounts, lookups: quick ? 200_000 : 800_000, rounds: quick ? 3 : 11)
        // The matrix, ns per lookup (aggregate over the threads).
        for keys in [1024, 100_000] {
            for shared in [false, true] {
                var line = pad("hit matrix \(keys) keys, \(shared ? "shared Zipf 1.1" : "disjoint")", 38)
                for contender in scalingContenders {
                    line += " " + contender + ":"
                    for threads in threadCounts {
                        line += " " + formatNanoseconds(scaling.nanoseconds(contender, keys: keys, shared: shared, threads: threads)) + "@\(threads)t"
                    }
                }
                notes.append(line)
            }
        }
        func scalings(_ contender: String) -> String {
            [(false, 2), (true, 2), (true, 8)].map { shared, threads in
                "\(threads)t \(shared ? "shared" : "disjoint") " + format2(scaling.pairedScaling(contender, shared: shared, threads: threads))
                    + " (medians' ratio " + format2(scaling.scaling(contender, shared: shared, threads: threads)) + ")"
            }.joined(separator: ", ")
        }
        notes.append(
            "hit scaling (1,024 keys; throughput at N threads / 1 thread, median of per-round ratios): cache " + scalings("cache")
                + "; the machine's ceiling (a private dictionary per thread) " + scalings("private_dict")
                + "; Mutex dict 2t shared " + format2(scaling.pairedScaling("mutex_dict", shared: true, threads: 2))
                + ", 16-shard Mutex 2t shared " + format2(scaling.pairedScaling("sharded_mutex", shared: true, threads: 2))
                + "; a thread waited for a CPU <= " + format2(100 * scaling.worstRunQueueFraction) + "% of a run"
                + (scaling.worstRunQueueFraction > 0.05 ? " (machine busy: multi-thread figures measure that too)" : ""))
        rows.append(
            Row(
                name: "hit_1t_vs_mutex_dict", candidate: "hot hit, 1 thread, Zipf, 1024 keys",
                candidateNanoseconds: scaling.nanoseconds("cache", shared: true, threads: 1), baseline: "Mutex<[Int:[UInt8]]> lookup",
                baselineNanoseconds: scaling.nanoseconds("mutex_dict", shared: true, threads: 1), goal: 1.0))
        rows.append(
            Row(
                name: "hit_2t_vs_sharded_mutex", candidate: "hot hit, 2 threads, Zipf (aggregate)",
                candidateNanoseconds: scaling.nanoseconds("cache", shared: true, threads: 2), baseline: "16-shard Mutex dict, 2 threads",
                baselineNanoseconds: scaling.nanoseconds("sharded_mutex", shared: true, threads: 2), goal: nil))
        // Scaling figures (higher is better) are rows whose "candidate" is the 1-thread time.
        for (name, shared, threads) in [("hit_scaling_2t_disjoint", false, 2), ("hit_scaling_2t_shared", true, 2), ("hit_scaling_8t_shared", true, 8)] {
            rows.append(
                Row(
                    name: name, candidate: "hot hit, 1 thread (per lookup)",
                    candidateNanoseconds: scaling.nanoseconds("cache", shared: shared, threads: 1),
                    baseline: "hot hit, \(threads) threads (aggregate)",
                    baselineNanoseconds: scaling.nanoseconds("cache", shared: shared, threads: threads), goal: nil,
                    higherGoal: threads == 2 ? 1.8 : 1.6, pairedRatio: scaling.pairedScaling("cache", shared: shared, threads: threads)))
        }
    }
    if runs("churn") {
        rows += try ChurnBenchmarks.rows(rounds: quick ? 3 : 7, notes: &notes)
    }
    if runs("regen") {
        rows += try benchmarkMissRegeneration(rounds: quick ? 11 : 41)
    }
    // ---- issue 14: small objects ----
    if runs("small") {
        rows += try smallObjectRows(keyCount: quick ? 100_000 : 1_000_000, notes: &notes)
    }
    // ---- end of issue 14 ----
} catch {
    printError("volatile-bench: benchmark failed: \(error)")
    exit(1)
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

print(pad("benchmark", 26) + pad("candidate", 42) + pad("median", 12) + pad("baseline", 40) + pad("median", 12) + pad("ratio", 8) + "goal")
for row in rows {
    let goal = row.goal.map { "<= \(format2($0)) " + (row.ratio <= $0 ? "met" : "MISSED") }
        ?? row.higherGoal.map { ">= \(format2($0)) " + (row.ratio >= $0 ? "met" : "MISSED") } ?? ""
    print(
        pad(row.name, 26) + pad(row.candidate, 42) + pad(row.unit.map { format2(row.candidateNanoseconds) + " " + $0 } ?? formatNanoseconds(row.candidateNanoseconds), 12)
            + pad(row.baseline, 40) + pad(row.unit.map { format2(row.baselineNanoseconds) + " " + $0 } ?? formatNanoseconds(row.baselineNanoseconds), 12)
            + pad(format2(row.ratio), 8) + goal)
}
for note in notes { print(note) }
let order = [
    "repin_uffd_vs_populate", "repin_canary_vs_touch", "unpin_vs_madvfree", "hot_hit_vs_mutex_dict", "hot_hit_vs_nscache",
    "hit_1t_vs_mutex_dict", "hit_scaling_2t_disjoint", "hit_scaling_2t_shared", "hit_scaling_8t_shared", "hit_2t_vs_sharded_mutex",
    "regen_overhead", "small_rss_per_entry_vs_dict", "small_insert_vs_dict", "small_hot_lookup_vs_dict",
    "small_removeall_seconds", "churn_2t_membarrier_vs_fences",
]
let ratioLine = order.map { name in
    "\(name)=" + (rows.first { $0.name == name && $0.inRatioLine }.map { format2($0.ratio) } ?? "n/a")
}.joined(separator: " ")
print("RATIO \(ratioLine)")
