// `volatile-bench --only small` (issue 14). Times are thread CPU time per entry: one million small objects (16 B and 256 B) in a
// SmallObjectCache beside a plain `[Int: [UInt8]]` in the same run, and, for the "before"
// figures, VolatileCache with a page per object (on fewer keys: it is 20 to 100 times slower).
// Then regrouping by recency: how many pages a scattered hot set ends on, with and without.
import CVolatileShim
import Synchronization
import VolatileCache
import VolatileMemory
#if canImport(Glibc)
import Glibc
#endif

/// Figures for one object size and structure.
struct SmallObjectFigures {
    /// Resident memory: bytes per entry once filled, the process's RSS before the inserts,
    /// and RSS after `removeAll` minus RSS before.
    var rss: (perEntry: Double, before: Int, afterRemoveAll: Int)
    /// Thread CPU time per entry: insert; hot lookup (median of the chunks); first lookup of
    /// each key after `shed()` (cache only); the dictionary behind a `Mutex`, value used after
    /// the lock, same chunks (dictionary only: context, since the cache is thread-safe and a
    /// plain dictionary is not).
    var nanoseconds: (insert: Double, hotLookup: Double, volatileLookup: Double?, mutexLookup: Double?)
    var removeAllSeconds: Double
}

/// The resident set of this process, from /proc/self/statm.
func processResidentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return -1 }
    let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

enum SmallObjectBenchmarks {
    /// A permutation of 0..<count (deterministic), so lookups miss the CPU caches as a
    /// real workload's would.
    static func shuffledKeys(_ count: Int) -> [Int] {
        var keys = Array(0..<count)
        var state: UInt64 = 0x5EED
        for index in stride(from: count - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let other = Int((state >> 33) % UInt64(index + 1))
            keys.swapAt(index, other)
        }
        return keys
    }

    static func content(_ byteCount: Int) -> [UInt8] { (0..<byteCount).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    /// The cache and the dictionary built one after the other (RSS deltas each), then their
    /// lookups interleaved chunk by chunk (medians), then `shed()` and the cache's first
    /// lookups, then both `removeAll`s.
    static func compareSizes(byteCount: Int, keys: [Int]) throws -> (cache: SmallObjectFigures, dictionary: SmallObjectFigures) {
        let template = content(byteCount)
        var configuration = SmallObjectCache<Int>.Configuration(hotByteLimit: 1 << 30)
        configuration.arena.recycledByteLimit = 0
        let cache = try SmallObjectCache<Int>(configuration: configuration)
        _ = vc_malloc_trim()
        let cacheBefore = processResidentBytes()
        let cacheInsert = try timed { for key in 0..<keys.count { try cache.insert(template, forKey: key) } }
        let cacheFull = processResidentBytes()

        let dictionaryBefore = processResidentBytes()
        var dictionary: [Int: [UInt8]] = [:]
        // A fresh array per entry (a copy of the template would share its storage).
        let dictionaryInsert = timedPlain {
            for key in 0..<keys.count {
                dictionary[key] = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, count in
                    _ = buffer.initialize(from: template)
                    count = byteCount
                }
            }
        }
        let dictionaryFull = processResidentBytes()

        var sink = 0
        var cacheSamples: [Double] = []
        var dictionarySamples: [Double] = []
        var mutexSamples: [Double] = []
        let chunk = min(100_000, max(1, keys.count / 10))
        do {
            let locked = Mutex(dictionary)  // shares the dictionary's storage (nothing is copied)
            for round in 0..<21 {
                // Each structure reads a different slice in a round: the dictionary and its
                // Mutex form share storage, and a slice read just before would be in cache.
                func slice(_ offset: Int) -> ArraySlice<Int> {
                    let start = ((round + offset) * chunk) % max(1, keys.count - chunk)
                    return keys[start..<min(keys.count, start + chunk)]
                }
                func runCache() throws {
                    let slice = slice(0)
                    cacheSamples.append(try timed { for key in slice { sink &+= Int(try cache.withBytes(forKey: key) { $0[0] } ?? 0) } } / Double(slice.count))
                }
                func runDictionary() {
                    let slice = slice(7)
                    dictionarySamples.append(timedPlain { for key in slice { sink &+= Int(dictionary[key]!.withUnsafeBytes { $0[0] }) } } / Double(slice.count))
                }
                func runMutex() {
                    let slice = slice(14)
                    mutexSamples.append(timedPlain {
                        for key in slice {
                            let value = locked.withLock { $0[key] }
                            sink &+= Int(value!.withUnsafeBytes { $0[0] })
                        }
                    } / Double(slice.count))
                }
                if round % 2 == 0 { try runCache(); runDictionary(); runMutex() } else { runMutex(); runDictionary(); try runCache() }
            }
        }  // `locked` ends here: the dictionary's storage is unique again
        cache.shed()
        let volatile = try timed { for key in keys { sink &+= Int(try cache.withBytes(forKey: key) { $0[0] } ?? 0) } }

        let dictionaryRemoveAll = timedPlain { dictionary.removeAll() }
        _ = vc_malloc_trim()
        let dictionaryAfter = processResidentBytes()
        let cacheRemoveAll = try timed { cache.removeAll() }
        let cacheAfter = processResidentBytes()
        if sink == 42 { print("") }
        let count = Double(keys.count)
        return (
            SmallObjectFigures(
                rss: (Double(cacheFull - cacheBefore) / count, cacheBefore, cacheAfter - cacheBefore),
                nanoseconds: (cacheInsert / count, median(cacheSamples), volatile / count, nil),
                removeAllSeconds: cacheRemoveAll / 1e9),
            SmallObjectFigures(
                rss: (Double(dictionaryFull - dictionaryBefore) / count, dictionaryBefore, dictionaryAfter - dictionaryBefore),
                nanoseconds: (dictionaryInsert / count, median(dictionarySamples), nil, median(mutexSamples)),
                removeAllSeconds: dictionaryRemoveAll / 1e9)
        )
    }

    /// The "before" figures: VolatileCache, a page per object, everything hot.
    static func pagePerObject(byteCount: Int, keyCount: Int) throws -> SmallObjectFigures {
        let template = content(byteCount)
        let keys = shuffledKeys(keyCount)
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 1 << 32))
        _ = vc_malloc_trim()
        let before = processResidentBytes()
        let insert = try timed { for key in 0..<keyCount { try cache.insert(template, forKey: key) } }
        let full = processResidentBytes()
        var sink = 0
        let hot = try timed { for key in keys { sink &+= Int(try cache.withBytes(forKey: key) { $0[0] } ?? 0) } }
        let removeAll = try timed { cache.removeAll() }
        let after = processResidentBytes()
        if sink == 42 { print("") }
        let count = Double(keyCount)
        return SmallObjectFigures(
            rss: (Double(full - before) / count, before, after - before),
            nanoseconds: (insert / count, hot / count, nil, nil), removeAllSeconds: removeAll / 1e9)
    }

    // CPU time of this thread, not wall time: on a shared machine (load average above the
    // core count) wall time measures the scheduler. System calls count (they are CPU time
    // of this thread); waiting for a CPU does not.
    static func timed(_ body: () throws -> Void) throws -> Double {
        let start = threadCPUNanoseconds()
        try body()
        return Double(threadCPUNanoseconds() - start)
    }

    static func timedPlain(_ body: () -> Void) -> Double {
        let start = threadCPUNanoseconds()
        body()
        return Double(threadCPUNanoseconds() - start)
    }
}

/// The `--only small` rows: per size, the cache beside the dictionary; the RATIO keys come
/// from the 16-byte run.
@MainActor
func smallObjectRows(keyCount: Int, notes: inout [String]) throws -> [Row] {
    var rows: [Row] = []
    let keys = SmallObjectBenchmarks.shuffledKeys(keyCount)
    for byteCount in [16, 256] {
        let (cache, dictionary) = try SmallObjectBenchmarks.compareSizes(byteCount: byteCount, keys: keys)
        let inLine = byteCount == 16
        let suffix = inLine ? "" : "_\(byteCount)"
        let label = "\(keyCount / 1000)k x \(byteCount) B"
        rows.append(Row(
            name: "small_rss_per_entry_vs_dict" + suffix, candidate: "SmallObjectCache RSS/entry, \(label)",
            candidateNanoseconds: cache.rss.perEntry, baseline: "[Int: [UInt8]] RSS/entry",
            baselineNanoseconds: dictionary.rss.perEntry, goal: 3, inRatioLine: inLine, unit: "B"))
        rows.append(Row(
            name: "small_insert_vs_dict" + suffix, candidate: "insert, \(label)", candidateNanoseconds: cache.nanoseconds.insert,
            baseline: "dictionary insert", baselineNanoseconds: dictionary.nanoseconds.insert, goal: nil, inRatioLine: inLine))
        rows.append(Row(
            name: "small_hot_lookup_vs_dict" + suffix, candidate: "hot lookup, \(label)", candidateNanoseconds: cache.nanoseconds.hotLookup,
            baseline: "dictionary lookup", baselineNanoseconds: dictionary.nanoseconds.hotLookup, goal: 1.5, inRatioLine: inLine))
        rows.append(Row(
            name: "small_hot_lookup_vs_mutex_dict" + suffix, candidate: "hot lookup, \(label)",
            candidateNanoseconds: cache.nanoseconds.hotLookup, baseline: "Mutex<[Int: [UInt8]]> lookup",
            baselineNanoseconds: dictionary.nanoseconds.mutexLookup ?? .nan, goal: nil, inRatioLine: false))
        rows.append(Row(
            name: "small_volatile_lookup" + suffix, candidate: "lookup after shed(), \(label)",
            candidateNanoseconds: cache.nanoseconds.volatileLookup ?? .nan, baseline: "dictionary lookup",
            baselineNanoseconds: dictionary.nanoseconds.hotLookup, goal: nil, inRatioLine: false))
        rows.append(Row(
            name: "small_removeall_seconds" + suffix, candidate: "removeAll, \(label)", candidateNanoseconds: cache.removeAllSeconds,
            baseline: "(seconds; goal <= 0.5 s)", baselineNanoseconds: 1, goal: 0.5, inRatioLine: inLine, unit: "s"))
        notes.append(
            "small \(label): insert \(formatNanoseconds(cache.nanoseconds.insert)) (dict \(formatNanoseconds(dictionary.nanoseconds.insert))), "
                + "RSS/entry \(format2(cache.rss.perEntry)) B (dict \(format2(dictionary.rss.perEntry)) B), "
                + "removeAll \(format2(cache.removeAllSeconds)) s (dict \(format2(dictionary.removeAllSeconds)) s), "
                + "RSS after removeAll \(format2(Double(cache.rss.afterRemoveAll) / 1048576)) MiB vs before "
                + "(\(format2(100 * Double(cache.rss.afterRemoveAll) / Double(cache.rss.before))) % of the \(format2(Double(cache.rss.before) / 1048576)) MiB start)")
    }
    // Regrouping by recency: a scattered hot set, with and without.
    let regrouped = try SmallObjectBenchmarks.regrouping(keyCount: keyCount / 5, regroup: true)
    let scattered = try SmallObjectBenchmarks.regrouping(keyCount: keyCount / 5, regroup: false)
    let hotLabel = "\(keyCount / 5000)k x 64 B, 10 % hot at random"
    rows.append(Row(
        name: "small_hot_set_pages_vs_min", candidate: "pages holding the hot set, \(hotLabel)",
        candidateNanoseconds: Double(regrouped.hotPages), baseline: "fewest pages that hold it",
        baselineNanoseconds: Double(regrouped.minimumPages), goal: 2, inRatioLine: false, unit: "pages"))
    rows.append(Row(
        name: "small_hot_set_pages_vs_min_unregrouped", candidate: "same, without regrouping",
        candidateNanoseconds: Double(scattered.hotPages), baseline: "fewest pages that hold it",
        baselineNanoseconds: Double(scattered.minimumPages), goal: nil, inRatioLine: false, unit: "pages"))
    for (name, figures) in [("with", regrouped), ("without", scattered)] {
        notes.append(
            "small regrouping \(name), \(hotLabel), hot budget \(figures.budgetPages) pages, 12 rounds: hot set on \(figures.hotPages) pages "
                + "(\(figures.pinnedHotPages) pinned; fewest \(figures.minimumPages)), \(figures.hotLost) of \(figures.hotCount) hot objects lost "
                + "when every volatile page was dropped, \(figures.moves) objects moved, \(figures.pins) page pins, "
                + "\(formatNanoseconds(figures.nanosecondsPerRead)) CPU per read")
    }
    // Before: a page per object (VolatileCache), on fewer keys.
    let beforeKeys = min(keyCount, 100_000)
    let before = try SmallObjectBenchmarks.pagePerObject(byteCount: 16, keyCount: beforeKeys)
    notes.append(
        "before (VolatileCache, page per object, everything hot, \(beforeKeys / 1000)k x 16 B): RSS/entry \(format2(before.rss.perEntry)) B, "
            + "insert \(formatNanoseconds(before.nanoseconds.insert)), hot lookup \(formatNanoseconds(before.nanoseconds.hotLookup)), "
            + "removeAll \(format2(before.removeAllSeconds)) s (x\(keyCount / beforeKeys) for \(keyCount / 1000)k: "
            + "\(format2(before.removeAllSeconds * Double(keyCount / beforeKeys))) s), RSS after removeAll "
            + "\(format2(Double(before.rss.afterRemoveAll) / 1048576)) MiB above the start")
    return rows
}

/// What the regrouping scenario left behind.
struct RegroupingFigures {
    var hotCount: Int
    var hotPages: Int
    var pinnedHotPages: Int
    var minimumPages: Int
    var budgetPages: Int
    var hotLost: Int
    var moves: Int
    var pins: Int
    var nanosecondsPerRead: Double
}

extension SmallObjectBenchmarks {
    /// `keyCount` objects of 64 B inserted in key order; a hot set of a tenth of them chosen
    /// at random, read in a random order for 12 rounds with one cold read per 20 hot ones,
    /// under a hot budget of 1.25 times the fewest pages the hot set fits in (plus each
    /// shard's slack); then how many pages hold the hot set, and how much of it a drop of
    /// every volatile page takes.
    static func regrouping(keyCount: Int, regroup: Bool) throws -> RegroupingFigures {
        let byteCount = 64
        let hotCount = keyCount / 10
        let minimumPages = (hotCount * byteCount + 4095) / 4096
        var configuration = SmallObjectCache<Int>.Configuration(hotByteLimit: minimumPages * 5 / 4 * 4096)
        configuration.regroupsByRecency = regroup
        let cache = try SmallObjectCache<Int>(configuration: configuration)
        func content(_ key: Int) -> [UInt8] { (0..<byteCount).map { UInt8(truncatingIfNeeded: key &* 31 &+ $0) } }
        for key in 0..<keyCount { try cache.insert(content(key), forKey: key) }
        var state: UInt64 = 0x14
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var order = Array(0..<keyCount)
        for index in stride(from: keyCount - 1, to: 0, by: -1) { order.swapAt(index, next() % (index + 1)) }
        var hot = Array(order.prefix(hotCount))
        var sink = 0
        var reads = 0
        let nanoseconds = try timed {
            for _ in 0..<12 {
                for index in stride(from: hotCount - 1, to: 0, by: -1) { hot.swapAt(index, next() % (index + 1)) }
                for (index, key) in hot.enumerated() {
                    sink &+= try cache.withBytes(forKey: key, regenerate: { content(key) }) { Int($0[1]) }
                    reads += 1
                    if index % 20 == 0 {
                        let cold = next() % keyCount
                        sink &+= try cache.withBytes(forKey: cold, regenerate: { content(cold) }) { Int($0[1]) }
                        reads += 1
                    }
                }
            }
        }
        let (hotPages, pinnedHotPages) = cache.pages(holding: hot)
        let statistics = cache.statistics
        try cache.arena.dropAllVolatilePages()
        var hotLost = 0
        for key in hot where try cache.withBytes(forKey: key, { $0[1] }) == nil { hotLost += 1 }
        if sink == 42 { print("") }
        return RegroupingFigures(
            hotCount: hotCount, hotPages: hotPages, pinnedHotPages: pinnedHotPages, minimumPages: minimumPages,
            budgetPages: minimumPages * 5 / 4, hotLost: hotLost, moves: statistics.relocatedObjects, pins: statistics.pagePins,
            nanosecondsPerRead: nanoseconds / Double(reads))
    }

    /// `--small-loop N`: for profiling the small-object hit.
    static func lookupLoop(rounds: Int) throws {
        let keys = shuffledKeys(1_000_000)
        let template = content(16)
        let cache = try SmallObjectCache<Int>(configuration: .init(hotByteLimit: 1 << 30))
        for key in 0..<keys.count { try cache.insert(template, forKey: key) }
        var sink = 0
        for _ in 0..<rounds {
            for key in keys { sink &+= Int(try cache.withBytes(forKey: key) { $0[0] } ?? 0) }
        }
        print(sink)
    }
}
