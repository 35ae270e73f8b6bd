// Cache benchmarks for the lead's `volatile-bench` main: each returns its figures (median
// nanoseconds) and the ratios against baselines measured in the same run.
import Foundation
import Synchronization
import VolatileCache
import VolatileMemory

/// Hot-hit figures: per lookup, median of several rounds.
///
/// Two `Mutex<[Int: [UInt8]]>` baselines, measured in the same run:
/// - *lookup* (the baseline of the goal): `let value = dictionary.withLock { $0[key] }`, then
///   the value is used outside the lock, as a lookup is written (the array is retained in the
///   lock and released after use);
/// - *in-lock read*: `dictionary.withLock { $0[key]?[1] }`, reading one byte inside the lock
///   (no retain; it only works for a trivial body, so it flatters the baseline).
struct HotHitBenchmarkResult: CustomStringConvertible {
    var keyCount: Int
    var cache: HitTimes
    var mutexDictionary: HitTimes
    var mutexInLock: HitTimes
    var nsCache: HitTimes
    /// The largest share of a 2-thread run's wall time its threads spent waiting for a CPU
    /// (0: they ran side by side; more than a few percent: the machine was busy, and the
    /// 2-thread figures measure that, not contention).
    var twoThreadRunQueueFraction: Double
    /// cache / Mutex<[Key: [UInt8]]> lookup returning the value, single thread (target <= 1.5).
    var ratioToMutex: Double { cache.single / mutexDictionary.single }
    /// cache / Mutex<[Key: [UInt8]]> with the read inside the lock.
    var ratioToMutexInLock: Double { cache.single / mutexInLock.single }

    var description: String {
        String(
            format: "hot hit (%d keys): cache %.1f ns, Mutex dict lookup %.1f ns (ratio %.2f), Mutex dict in-lock read %.1f ns (ratio %.2f), NSCache %.1f ns\n"
                + "  2 threads (ns/op/thread): cache %.1f (scaling %.2fx), Mutex dict lookup %.1f (scaling %.2fx), in-lock read %.1f (scaling %.2fx), NSCache %.1f (scaling %.2fx)",
            keyCount, cache.single, mutexDictionary.single, ratioToMutex, mutexInLock.single, ratioToMutexInLock,
            nsCache.single, cache.twoThreads, cache.scaling, mutexDictionary.twoThreads,
            mutexDictionary.scaling, mutexInLock.twoThreads, mutexInLock.scaling, nsCache.twoThreads, nsCache.scaling)
    }
}

/// One contender's median time per lookup: alone, and per thread with 2 threads hitting at
/// once (each thread walks the key sequence from its own offset, as independent request
/// streams would).
struct HitTimes {
    var single: Double
    var twoThreads: Double
    /// Throughput with 2 threads over throughput with 1 (2.0 is perfect scaling).
    var scaling: Double { 2 * single / twoThreads }
}

/// NSCache is documented thread-safe; swift-corelibs-foundation does not mark it Sendable.
private final class SendableNSCache: @unchecked Sendable {  // NSCache locks internally.
    let cache = NSCache<NSNumber, NSData>()
}

/// Hot hits on `keyCount` 256-byte objects against a `Mutex<[Int: [UInt8]]>` and NSCache.
func benchmarkHotHits(keyCount: Int = 1024, lookupsPerRound: Int = 1_000_000, rounds: Int = 7) throws -> HotHitBenchmarkResult {
    let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 256 << 20))
    let regenerate = hotObjectRegenerator
    let dictionary = Mutex<[Int: [UInt8]]>([:])
    let nsCache = SendableNSCache()
    for key in 0..<keyCount {
        try cache.withBytes(forKey: key, regenerate: regenerate) { _ in }
        let bytes = (0..<256).map { UInt8(truncatingIfNeeded: key &+ $0) }
        dictionary.withLock { $0[key] = bytes }
        nsCache.cache.setObject(NSData(bytes: bytes, length: 256), forKey: NSNumber(value: key))
    }
    // Same key sequence for all: a stride through the keys. It repeats every `keyCount`
    // steps, so thread `t` starts half a period further (`t * keyCount / 2`): the threads are
    // independent streams on different keys. (An offset that is a multiple of `keyCount`,
    // such as 2048, has both threads hit the same key, lock and hold count at every step.)
    let keys = (0..<4096).map { ($0 &* 7919) % keyCount }
    let mask = keys.count - 1
    let threadOffset = keyCount / 2

    // Every round returns a sum of the bytes read, which the caller keeps (also on the
    // 2-thread runs), so that no read can be optimized away.
    @Sendable func cacheRound(_ lookups: Int, _ offset: Int) -> Int {
        var sum = 0
        for index in offset..<(offset + lookups) {
            sum &+= (try? cache.withBytes(forKey: keys[index & mask], regenerate: regenerate) { Int($0[1]) }) ?? 0
        }
        return sum
    }
    // The lookup as users write it: the value leaves the lock (retained) and is used after.
    @Sendable func mutexRound(_ lookups: Int, _ offset: Int) -> Int {
        var sum = 0
        for index in offset..<(offset + lookups) {
            let key = keys[index & mask]
            let value = dictionary.withLock { $0[key] }
            sum &+= Int(value?[1] ?? 0)
        }
        return sum
    }
    // The byte read inside the lock (no retain of the array): only possible for a trivial body.
    @Sendable func mutexInLockRound(_ lookups: Int, _ offset: Int) -> Int {
        var sum = 0
        for index in offset..<(offset + lookups) {
            let key = keys[index & mask]
            sum &+= dictionary.withLock { Int($0[key]?[1] ?? 0) }
        }
        return sum
    }
    @Sendable func nsCacheRound(_ lookups: Int, _ offset: Int) -> Int {
        var sum = 0
        for index in offset..<(offset + lookups) {
            if let data = nsCache.cache.object(forKey: NSNumber(value: keys[index & mask])) {
                sum &+= Int(data.bytes.load(fromByteOffset: 1, as: UInt8.self))
            }
        }
        return sum
    }

    var sink = 0
    let sharedSink = Atomic<Int>(0)
    var runQueue = 0.0
    func twoThreads(_ lookups: Int, _ round: @escaping @Sendable (Int, Int) -> Int) -> Double {
        let sample = runThreaded(2) { sharedSink.add(round(lookups, $0 * threadOffset), ordering: .relaxed) }
        runQueue = max(runQueue, sample.runQueueFraction)
        return sample.nanoseconds / Double(lookups)
    }
    // Cache, Mutex dict lookup, Mutex dict in-lock read, NSCache (a tenth of the lookups: it is slow).
    let contenders: [(lookups: Int, round: @Sendable (Int, Int) -> Int)] = [
        (lookupsPerRound, cacheRound), (lookupsPerRound, mutexRound), (lookupsPerRound, mutexInLockRound),
        (lookupsPerRound / 10, nsCacheRound),
    ]
    var single = [[Double]](repeating: [], count: contenders.count)
    var two = single
    for _ in 0..<rounds {
        for (index, contender) in contenders.enumerated() {
            single[index].append(nanoseconds { sink &+= contender.round(contender.lookups, 0) } / Double(contender.lookups))
        }
        for (index, contender) in contenders.enumerated() {
            two[index].append(twoThreads(contender.lookups, contender.round))
        }
    }
    if sink == 42 || sharedSink.load(ordering: .relaxed) == 42 { print("") }
    let times = contenders.indices.map { HitTimes(single: median(single[$0]), twoThreads: median(two[$0])) }
    return HotHitBenchmarkResult(
        keyCount: keyCount, cache: times[0], mutexDictionary: times[1], mutexInLock: times[2], nsCache: times[3],
        twoThreadRunQueueFraction: runQueue)
}

/// A stand-in for a decode: about `microseconds` of arithmetic per MiB written.
@inline(never)
func cacheDecode(into buffer: UnsafeMutableRawBufferPointer, seed: UInt64, passes: Int) {
    let words = buffer.bindMemory(to: UInt64.self)
    var state = seed | 1
    for _ in 0..<passes {
        for index in words.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[index] = state
        }
    }
}

/// Miss-and-regenerate of a 1 MiB object with a ~1 ms regenerator, against the regenerator
/// writing into memory it already owns. Each round measures, in order: the baseline; the bare
/// cost of fresh pages (mmap, the regenerator into them, munmap); a cold miss (recycled extents
/// trimmed first, so it pays for fresh pages); the steady-state miss (the key was removed, its
/// extent recycled, and it is requested again); the same with no warm recycling
/// (`warmRecycledByteLimit = 0`: the recycled extent is `MADV_FREE`d at the removal and populated
/// again at the reuse, the behaviour before); a miss after the kernel dropped every page of the
/// volatile entry (recycled extents trimmed: fresh pages).
/// - Returns: The steady-state miss (the goal's row), then the others as context rows.
func benchmarkMissRegeneration(rounds: Int = 31) throws -> [Row] {
    let byteCount = 1 << 20
    // Calibrate the passes to about 1 ms.
    let owned = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 4096)
    defer { owned.deallocate() }
    memset(owned.baseAddress!, 1, byteCount)
    var passes = 1
    while nanoseconds({ cacheDecode(into: owned, seed: 1, passes: passes) }) < 900_000 && passes < 64 { passes += 1 }
    let regenerate: (inout RegenerationContext<Int>) throws -> Void = { context in
        let seed = UInt64(context.key)
        try context.write(byteCount: byteCount) { buffer in
            cacheDecode(into: buffer, seed: seed, passes: passes)
            return byteCount
        }
    }
    let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
    var coldRecycling = VolatileCache<Int>.Configuration(hotByteLimit: 64 << 20)
    coldRecycling.arena.warmRecycledByteLimit = 0
    let coldRecyclingCache = try VolatileCache<Int>(configuration: coldRecycling)
    var baseline: [Double] = []
    var steady: [Double] = []
    var steadyVolatileRecycle: [Double] = []
    var cold: [Double] = []
    var dropped: [Double] = []
    var fresh: [Double] = []
    var sink: UInt8 = 0
    for round in 0..<rounds {
        baseline.append(nanoseconds {
            cacheDecode(into: owned, seed: UInt64(round), passes: passes)
            sink &+= owned[17]
        })
        fresh.append(nanoseconds {
            let pages = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            cacheDecode(into: UnsafeMutableRawBufferPointer(start: pages, count: byteCount), seed: UInt64(round), passes: passes)
            sink &+= pages.load(fromByteOffset: 17, as: UInt8.self)
            munmap(pages, byteCount)
        })
        cache.arena.trimRecycledExtents()
        cold.append(nanoseconds {
            sink &+= (try? cache.withBytes(forKey: round, regenerate: regenerate) { $0[17] }) ?? 0
        })
        cache.removeValue(forKey: round)
        steady.append(nanoseconds {
            sink &+= (try? cache.withBytes(forKey: round, regenerate: regenerate) { $0[17] }) ?? 0
        })
        _ = try? coldRecyclingCache.withBytes(forKey: round, regenerate: regenerate) { $0[17] }
        coldRecyclingCache.removeValue(forKey: round)
        steadyVolatileRecycle.append(nanoseconds {
            sink &+= (try? coldRecyclingCache.withBytes(forKey: round, regenerate: regenerate) { $0[17] }) ?? 0
        })
        coldRecyclingCache.removeValue(forKey: round)
        cache.shed()
        _ = try? cache.arena.dropAllVolatilePages()
        cache.arena.trimRecycledExtents()
        dropped.append(nanoseconds {
            sink &+= (try? cache.withBytes(forKey: round, regenerate: regenerate) { $0[17] }) ?? 0
        })
        cache.removeValue(forKey: round)
    }
    if sink == 42 { print("") }
    let ownedMemory = "regenerator into owned memory"
    let ownedMemoryNanoseconds = median(baseline)
    return [
        Row(
            name: "regen_overhead", candidate: "steady-state miss+regenerate 1 MiB", candidateNanoseconds: median(steady),
            baseline: ownedMemory, baselineNanoseconds: ownedMemoryNanoseconds, goal: 1.05),
        .context("regen_overhead_cold_recycle", "the same, recycled extent MADV_FREEd", median(steadyVolatileRecycle), vs: ownedMemory, ownedMemoryNanoseconds),
        .context("regen_cold_first_touch", "cold miss, fresh kernel pages", median(cold), vs: ownedMemory, ownedMemoryNanoseconds),
        .context("regen_after_full_drop", "volatile entry fully dropped", median(dropped), vs: ownedMemory, ownedMemoryNanoseconds),
        .context("regen_fresh_pages_bare", "regenerator into fresh mmap pages", median(fresh), vs: ownedMemory, ownedMemoryNanoseconds),
    ]
}

/// Steady-state misses only (`--regen-loop N`), or the regenerator into owned memory only
/// (`--regen-baseline N`): N rounds of a 1 MiB object, 8 passes, for callgrind / perf.
func runRegenerationLoopForProfiling(rounds: Int, baseline: Bool) throws {
    let byteCount = 1 << 20
    let passes = 8
    if baseline {
        let owned = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 4096)
        defer { owned.deallocate() }
        memset(owned.baseAddress!, 1, byteCount)
        var sink: UInt8 = 0
        for round in 0..<rounds {
            cacheDecode(into: owned, seed: UInt64(round), passes: passes)
            sink &+= owned[17]
        }
        if sink == 42 { print("") }
        return
    }
    let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
    var sink: UInt8 = 0
    for round in 0..<rounds {
        sink &+= try cache.withBytes(forKey: 1, regenerate: { context in
            try context.write(byteCount: byteCount) { buffer in
                cacheDecode(into: buffer, seed: UInt64(round), passes: passes)
                return byteCount
            }
        }) { $0[17] }
        cache.removeValue(forKey: 1)
    }
    if sink == 42 { print("") }
}
