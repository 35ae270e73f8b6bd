// Hot-hit scaling: 1, 2, 4 and 8 threads (4 and 8 oversubscribe a 2-core machine), over
// disjoint keys and over keys shared with a Zipf(1.1) distribution, with 1,024 and 100,000
// keys, against three baselines measured in the same run: `Mutex<[Int: [UInt8]]>`, a 16-shard
// Mutex dictionary, and NSCache. Every figure is aggregate throughput (all threads' lookups
// over the wall time from the first thread's start to the last one's end), as nanoseconds per
// lookup; medians of `rounds` rounds, contenders interleaved within each round and each
// contender's thread counts back to back, so that a scaling figure is the median of ratios of
// samples taken milliseconds apart. `private_dict` (a plain dictionary per thread, nothing
// shared) is the machine's ceiling: what 2 or 8 threads can gain here at all at that moment.
import Foundation
import Synchronization
import VolatileCache
import VolatileSystem

/// One contender's lookup loop: reads one byte of each value found, returns their sum.
typealias LookupLoop = @Sendable (_ keys: UnsafeBufferPointer<Int>, _ count: Int, _ thread: Int) -> Int

/// One plain `[Int: Int]` per thread (the byte the other contenders read, stored inline: no
/// reference count, so no atomic instruction at all): the machine's ceiling for scaling.
/// Nothing is shared, nothing is locked; what it loses at 2 threads is the hardware's (shared
/// caches, memory bandwidth, where the hypervisor runs the two vCPUs at that moment).
final class PrivateDictionaries: @unchecked Sendable {  // Thread `t` reads only `dictionaries[t]`, never written after init.
    let dictionaries: [[Int: Int]]

    init(threads: Int, keyCount: Int) {
        dictionaries = (0..<threads).map { _ in
            var dictionary: [Int: Int] = [:]
            for key in 0..<keyCount { dictionary[key] = Int(UInt8(truncatingIfNeeded: key &+ 1)) }
            return dictionary
        }
    }
}

/// A Mutex dictionary split in 16 shards (by the key's hash), each on its own cache lines.
final class ShardedMutexDictionary: @unchecked Sendable {  // Each shard is behind its Mutex.
    final class Shard: @unchecked Sendable {  // The dictionary is behind the Mutex.
        let dictionary = Mutex<[Int: [UInt8]]>([:])
        // Keeps neighbouring shards' lock words off one cache line pair.
        let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }
    let shards = (0..<16).map { _ in Shard() }

    @inline(__always)
    func shard(_ key: Int) -> Shard { shards[Int(truncatingIfNeeded: UInt(bitPattern: key.hashValue) >> 60)] }
}

/// NSCache is documented thread-safe; swift-corelibs-foundation does not mark it Sendable.
final class ScalingNSCache: @unchecked Sendable {  // NSCache locks internally.
    let cache = NSCache<NSNumber, NSData>()
}

/// Key sequences: per thread, `length` indices into `0..<keyCount`.
struct KeyStreams: @unchecked Sendable {  // Immutable after init; freed by `deallocate`.
    let streams: [UnsafeMutableBufferPointer<Int>]

    /// Disjoint: thread `t` of `threads` walks only keys `k` with `k % threads == t` (a
    /// scrambled order). Shared: every thread draws from one Zipf(s) distribution over all
    /// keys, with its own seed.
    init(keyCount: Int, threads: Int, length: Int, shared: Bool, zipf: ZipfTable) {
        streams = (0..<threads).map { thread in
            let stream = UnsafeMutableBufferPointer<Int>.allocate(capacity: length)
            var random = SplitMix64(seed: UInt64(thread) &* 0x9E37_79B9 &+ UInt64(keyCount))
            let own = max(1, (keyCount - thread + threads - 1) / threads)
            for index in 0..<length {
                if shared {
                    stream[index] = zipf.sample(&random)
                } else {
                    stream[index] = thread + threads * Int(random.next() % UInt64(own))
                }
            }
            return stream
        }
    }

    func deallocate() { for stream in streams { stream.deallocate() } }
}

/// Zipf(s) over `0..<n` by inverse CDF (rank 0 is the most popular; ranks are scattered over
/// the key space so popular keys do not share a shard by construction).
struct ZipfTable: Sendable {
    let cumulative: [Double]
    let permutation: [Int]

    init(count: Int, exponent: Double) {
        var sums = [Double](repeating: 0, count: count)
        var total = 0.0
        for rank in 0..<count {
            total += 1 / pow(Double(rank + 1), exponent)
            sums[rank] = total
        }
        cumulative = sums.map { $0 / total }
        var random = SplitMix64(seed: 7)
        var order = Array(0..<count)
        for index in stride(from: count - 1, to: 0, by: -1) { order.swapAt(index, Int(random.next() % UInt64(index + 1))) }
        permutation = order
    }

    func sample(_ random: inout SplitMix64) -> Int {
        let u = Double(random.next() >> 11) / Double(1 << 53)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < u { low = middle + 1 } else { high = middle }
        }
        return permutation[low]
    }
}

/// One run of `threads` threads: wall nanoseconds, and the largest share of it that one
/// thread spent waiting for a CPU.
struct ThreadedSample {
    var nanoseconds: Double
    var runQueueFraction: Double
    /// CPU time of all the threads together (`CLOCK_THREAD_CPUTIME_ID`): unlike the wall
    /// time, it does not count time spent waiting for a CPU, so CPU time per lookup at N
    /// threads over 1 thread measures contention alone (1.0 is none) on a busy machine.
    var cpuNanoseconds: Double = .nan
}

/// CPU time of the calling thread.
func threadCPUNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Nanoseconds this thread has spent runnable but waiting for a CPU (`run_delay` in
/// `/proc/thread-self/schedstat`); 0 if unavailable.
func runQueueNanoseconds() -> UInt64 {
    let fd = open("/proc/thread-self/schedstat", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return 0 }
    let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
    guard fields.count >= 2 else { return 0 }
    return UInt64(String(decoding: fields[1], as: UTF8.self)) ?? 0
}

/// Long-lived worker threads for `runThreaded`, as a server's request threads are: a thread
/// created per sample registers an epoch slot and takes a read-buffer stripe on its first
/// read, and the previous sample's threads may still hold theirs while they exit (their
/// thread-local destructors run after the sample ends), so stripes could be shared for a
/// while. Workers are started on demand and kept for the process.
final class BenchWorkers: @unchecked Sendable {  // `condition` guards every var.
    static let shared = BenchWorkers()

    private let condition = NSCondition()
    private var started = 0
    private var generation = 0
    private var active = 0
    private var running = 0
    private var body: (@Sendable (Int) -> Void)? = nil

    /// Runs `body(index)` on workers `0..<count` and returns when every one has returned.
    func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        condition.lock()
        while started < count {
            let index = started, before = generation
            started += 1
            // It waits for a generation after `before`: the one about to start.
            Thread.detachNewThread { self.work(index, after: before) }
        }
        self.body = body
        active = count
        running = count
        generation += 1
        condition.broadcast()
        while running > 0 { condition.wait() }
        self.body = nil
        condition.unlock()
    }

    private func work(_ index: Int, after initial: Int) {
        // Worker i on CPU i modulo the CPU count: a woken worker is otherwise placed next to
        // the thread that woke it, and two of them could share a CPU for milliseconds.
        let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        var mask = [UInt64](repeating: 0, count: 16)
        mask[(index % cpus) / 64] = 1 << UInt64((index % cpus) % 64)
        _ = Syscall.setThreadAffinity(mask)
        var seen = initial
        condition.lock()
        while true {
            while generation == seen { condition.wait() }
            seen = generation
            guard index < active, let body else { continue }
            condition.unlock()
            body(index)
            condition.lock()
            running -= 1
            if running == 0 { condition.broadcast() }
        }
    }
}

/// Runs `body(thread)` on `threads` worker threads released together from a barrier.
func runThreaded(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) -> ThreadedSample {
    let arrived = Atomic<Int>(0)
    let spans = Mutex<[(UInt64, UInt64, UInt64, UInt64)]>([])
    BenchWorkers.shared.run(threads) { index in
        let waitedBefore = runQueueNanoseconds()
        arrived.add(1, ordering: .acquiringAndReleasing)
        // Oversubscribed runs yield while waiting, so the last thread gets a CPU.
        while arrived.load(ordering: .acquiring) < threads { sched_yield() }
        let start = now()
        let cpuStart = threadCPUNanoseconds()
        body(index)
        let cpu = threadCPUNanoseconds() - cpuStart
        let end = now()
        let waited = runQueueNanoseconds() - waitedBefore
        spans.withLock { $0.append((start, end, waited, cpu)) }
    }
    return spans.withLock { spans in
        let wall = Double(spans.map(\.1).max()! - spans.map(\.0).min()!)
        let waited = spans.map { Double($0.2) }.max() ?? 0
        return ThreadedSample(nanoseconds: wall, runQueueFraction: waited / wall, cpuNanoseconds: spans.map { Double($0.3) }.reduce(0, +))
    }
}

/// The figures of the scaling matrix.
struct ScalingResult {
    /// `[contender][keys][workload][threads]` → nanoseconds per lookup, aggregate.
    var figures: [String: Double] = [:]
    /// The same keys → CPU nanoseconds per lookup (all threads' CPU time over all lookups).
    var cpuFigures: [String: Double] = [:]
    /// The same keys (N > 1 threads) → the median over rounds of that round's 1-thread time
    /// over its N-thread time (the two taken back to back).
    var pairedScalings: [String: Double] = [:]
    var worstRunQueueFraction = 0.0

    static func name(_ contender: String, keys: Int, shared: Bool, threads: Int) -> String {
        "\(contender)/\(keys)/\(shared ? "zipf" : "disjoint")/\(threads)t"
    }

    func nanoseconds(_ contender: String, keys: Int = 1024, shared: Bool, threads: Int) -> Double {
        figures[Self.name(contender, keys: keys, shared: shared, threads: threads)] ?? .nan
    }

    /// Throughput at `threads` over throughput at 1, the median over rounds of each round's
    /// own ratio (higher is better).
    func pairedScaling(_ contender: String, keys: Int = 1024, shared: Bool, threads: Int) -> Double {
        pairedScalings[Self.name(contender, keys: keys, shared: shared, threads: threads)] ?? .nan
    }

    /// Throughput at `threads` over throughput at 1, as the ratio of the medians (higher is better).
    func scaling(_ contender: String, keys: Int = 1024, shared: Bool, threads: Int) -> Double {
        nanoseconds(contender, keys: keys, shared: shared, threads: 1) / nanoseconds(contender, keys: keys, shared: shared, threads: threads)
    }
}

/// `private_dict` is the machine's ceiling (a plain dictionary per thread: nothing shared).
let scalingContenders = ["cache", "mutex_dict", "sharded_mutex", "nscache", "private_dict"]

/// Each thread's lookups in one sample of `contender` at `threads` threads.
/// - The lock-free contenders split `lookups` between the threads, but at 4 and 8 threads
///   each does as many as at 2: an oversubscribed sample then lasts several time slices
///   (~3 ms each), so the slice one CPU may still run alone at the end is a small part of
///   it (at 100k lookups a thread it was ~15 %).
/// - The locked ones split a quarter of `lookups` (they collapse to microseconds a lookup
///   at 4 and 8 threads), NSCache a tenth (it is ~50x slower than the others).
func lookupsPerThread(_ contender: String, threads: Int, lookups: Int) -> Int {
    switch contender {
    case "nscache": lookups / 10 / threads
    case "mutex_dict", "sharded_mutex": lookups / 4 / threads
    default: lookups / min(threads, 2)
    }
}

/// Measures the matrix (`lookups`: see `lookupsPerThread`).
func benchmarkScaling(
    keyCounts: [Int], threadCounts: [Int], lookups: Int, rounds: Int, contenders: [String] = scalingContenders
) throws -> ScalingResult {
    var result = ScalingResult()
    let sharedSink = Atomic<Int>(0)
    for keyCount in keyCounts {
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: Int(keyCount) * 8192))
        let regenerate = hotObjectRegenerator
        let dictionary = Mutex<[Int: [UInt8]]>([:])
        let sharded = ShardedMutexDictionary()
        let nsCache = ScalingNSCache()
        let privateDictionaries = PrivateDictionaries(
            threads: contenders.contains("private_dict") ? threadCounts.max()! : 0, keyCount: keyCount)
        for key in 0..<keyCount {
            try cache.withBytes(forKey: key, regenerate: regenerate) { _ in }
            let bytes = (0..<256).map { UInt8(truncatingIfNeeded: key &+ $0) }
            dictionary.withLock { $0[key] = bytes }
            sharded.shard(key).dictionary.withLock { $0[key] = bytes }
            nsCache.cache.setObject(NSData(bytes: bytes, length: 256), forKey: NSNumber(value: key))
        }
        let loops: [String: LookupLoop] = [
            "cache": { keys, count, _ in
                var sum = 0
                for index in 0..<count {
                    sum &+= (try? cache.withBytes(forKey: keys[index & (keys.count - 1)]) { Int($0[1]) }) ?? 0
                }
                return sum
            },
            "mutex_dict": { keys, count, _ in
                var sum = 0
                for index in 0..<count {
                    let key = keys[index & (keys.count - 1)]
                    let value = dictionary.withLock { $0[key] }
                    sum &+= Int(value?[1] ?? 0)
                }
                return sum
            },
            "sharded_mutex": { keys, count, _ in
                var sum = 0
                for index in 0..<count {
                    let key = keys[index & (keys.count - 1)]
                    let value = sharded.shard(key).dictionary.withLock { $0[key] }
                    sum &+= Int(value?[1] ?? 0)
                }
                return sum
            },
            "private_dict": { keys, count, thread in
                var sum = 0
                let dictionary = privateDictionaries.dictionaries[thread]
                for index in 0..<count {
                    sum &+= dictionary[keys[index & (keys.count - 1)]] ?? 0
                }
                return sum
            },
            "nscache": { keys, count, _ in
                var sum = 0
                for index in 0..<count {
                    if let data = nsCache.cache.object(forKey: NSNumber(value: keys[index & (keys.count - 1)])) {
                        sum &+= Int(data.bytes.load(fromByteOffset: 1, as: UInt8.self))
                    }
                }
                return sum
            },
        ]
        let zipf = ZipfTable(count: keyCount, exponent: 1.1)
        for shared in [false, true] {
            // Every thread count in every round (not one thread count after the other): a
            // scaling figure divides the 1-thread time by the N-thread time, and on a shared
            // machine a slow minute then disturbs both sides instead of one.
            let streams = threadCounts.map { KeyStreams(keyCount: keyCount, threads: $0, length: 1 << 16, shared: shared, zipf: zipf) }
            defer { for stream in streams { stream.deallocate() } }
            var samples: [String: [Double]] = [:]
            var cpuSamples: [String: [Double]] = [:]
            var roundScalings: [String: [Double]] = [:]
            for round in 0..<rounds {
                // Rotate the order each round so no contender always runs first.
                for offset in 0..<contenders.count {
                    let contender = contenders[(round + offset) % contenders.count]
                    let loop = loops[contender]!
                    // One contender's thread counts back to back (ascending in even rounds,
                    // descending in odd ones): a scaling figure divides a 1-thread time by an
                    // N-thread time taken a few milliseconds apart, so the host's slow and
                    // fast minutes fall on both sides of each round's ratio.
                    var oneThread = Double.nan
                    var roundTimes: [Int: Double] = [:]
                    let order = round % 2 == 0 ? Array(threadCounts.indices) : threadCounts.indices.reversed()
                    for position in order {
                        let threads = threadCounts[position]
                        let streams = streams[position]
                        let count = lookupsPerThread(contender, threads: threads, lookups: lookups)
                        // Every thread count on the same workers (worker 0 alone for 1 thread),
                        // each pinned to its CPU.
                        let sample = runThreaded(threads) { thread in
                            sharedSink.add(loop(UnsafeBufferPointer(streams.streams[thread]), count, thread), ordering: .relaxed)
                        }
                        result.worstRunQueueFraction = max(result.worstRunQueueFraction, sample.runQueueFraction)
                        let name = ScalingResult.name(contender, keys: keyCount, shared: shared, threads: threads)
                        let perLookup = sample.nanoseconds / Double(count * threads)
                        samples[name, default: []].append(perLookup)
                        cpuSamples[name, default: []].append(sample.cpuNanoseconds / Double(count * threads))
                        roundTimes[threads] = perLookup
                        if threads == 1 { oneThread = perLookup }
                    }
                    for (threads, time) in roundTimes where threads != 1 {
                        let name = ScalingResult.name(contender, keys: keyCount, shared: shared, threads: threads)
                        roundScalings[name, default: []].append(oneThread / time)
                    }
                }
            }
            for (name, values) in samples { result.figures[name] = median(values) }
            for (name, values) in cpuSamples { result.cpuFigures[name] = median(values) }
            for (name, values) in roundScalings { result.pairedScalings[name] = median(values) }
        }
    }
    if sharedSink.load(ordering: .relaxed) == 42 { print("") }
    return result
}

/// `--scaling-probe N`: the 2-thread figures of the RATIO line for the cache and the 16-shard
/// Mutex only, plus CPU time per lookup at 2 threads over 1 (contention alone: 1.00 is none,
/// and the wall-time scaling is then 2 / that on an idle machine).
func runScalingProbe(rounds: Int) throws {
    let contenders = ["cache", "private_dict", "sharded_mutex"]
    let result = try benchmarkScaling(keyCounts: [1024], threadCounts: [1, 2, 8], lookups: 800_000, rounds: rounds, contenders: contenders)
    for shared in [false, true] {
        for contender in contenders {
            var line = (shared ? "shared Zipf 1.1 " : "disjoint        ") + pad(contender, 14)
            let name1 = ScalingResult.name(contender, keys: 1024, shared: shared, threads: 1)
            line += " \(formatNanoseconds(result.figures[name1]!))@1t (cpu \(formatNanoseconds(result.cpuFigures[name1]!)))"
            for threads in [2, 8] {
                let name = ScalingResult.name(contender, keys: 1024, shared: shared, threads: threads)
                let wall = result.figures[name1]! / result.figures[name]!
                let cpu = result.cpuFigures[name]! / result.cpuFigures[name1]!
                let paired = result.pairedScalings[name]!
                line += "  \(threads)t: \(formatNanoseconds(result.figures[name]!)) scaling \(format2(wall)) paired \(format2(paired)), cpu/hit vs 1t \(format2(cpu))"
            }
            print(line)
        }
    }
    print("a thread waited for a CPU <= \(format2(100 * result.worstRunQueueFraction))% of a run; load \(loadAverage())")
}

/// The 1-minute load average, for the probe's line.
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) > 0 ? format2(loads[0]) : "?"
}

/// Single-thread hot hits only (for `valgrind --tool=callgrind`: instruction counts per hit).
func runHitLoopForProfiling(lookups: Int) throws {
    let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
    for key in 0..<1024 {
        try cache.insert(forKey: key, byteCount: 256) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(key & 255)) }
    }
    var sum = 0
    for index in 0..<lookups {
        sum &+= (try? cache.withBytes(forKey: (index &* 7919) & 1023) { Int($0[1]) }) ?? 0
    }
    if sum == 42 { print("") }
}

/// The `Mutex<[Int: [UInt8]]>` lookup loop alone, as `runHitLoopForProfiling` (same keys).
func runMutexLoopForProfiling(lookups: Int) {
    let dictionary = Mutex<[Int: [UInt8]]>([:])
    for key in 0..<1024 { dictionary.withLock { $0[key] = [UInt8](repeating: UInt8(key & 255), count: 256) } }
    var sum = 0
    for index in 0..<lookups {
        let key = (index &* 7919) & 1023
        let value = dictionary.withLock { $0[key] }
        sum &+= Int(value?[1] ?? 0)
    }
    if sum == 42 { print("") }
}
