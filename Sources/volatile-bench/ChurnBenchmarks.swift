// `volatile-bench --only churn` (issue 8): what the asymmetric fences cost writers. A lock-free
// hit skips its sequentially consistent fence because every grace period starts with
// membarrier(2) instead (see `ReadEpochs.swift`); a miss that evicts a hot entry starts one.
// The same workloads run in a child process with `VOLATILE_READ_FENCES=1` (readers fence,
// writers make no system call), in the same run, alternating with this process:
// - churn: two threads, uniform keys over 4,096 with a count limit of 512 (about 7 misses in
//   8, each evicting a hot entry), 256-byte objects: misses per second with 2 threads;
// - hits: one thread, 1,024 hot keys: what the fence costs a hit.
import Foundation
import Synchronization
import VolatileCache
import VolatileSystem

/// Nanoseconds per operation of this process's mode (membarrier unless disabled or missing).
struct ChurnFigures {
    var churnTwoThreads: Double
    var hitOneThread: Double
}

enum ChurnBenchmarks {
    static let keyCount = 4096
    static let countLimit = 512
    static let byteCount = 256

    /// Measures both workloads `rounds` times in this process; medians.
    static func measure(rounds: Int, threads: Int = 2) throws -> ChurnFigures {
        var churn: [Double] = []
        var hits: [Double] = []
        for _ in 0..<rounds {
            churn.append(try churnRound(threads: threads, operationsPerThread: 40_000 / threads))
            hits.append(try hitRound(lookups: 400_000))
        }
        return ChurnFigures(churnTwoThreads: median(churn), hitOneThread: median(hits))
    }

    /// Aggregate nanoseconds per operation of `threads` threads, each reading uniform keys
    /// through a fresh cache with a count limit (its own streams: no two threads alike).
    static func churnRound(threads: Int, operationsPerThread: Int) throws -> Double {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 64 << 20)
        configuration.countLimit = countLimit
        let cache = try VolatileCache<Int>(configuration: configuration)
        let regenerate: @Sendable (inout RegenerationContext<Int>) throws -> Void = { context in
            let key = context.key
            try context.write(byteCount: byteCount) { buffer in
                for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: key &+ index) }
                return buffer.count
            }
        }
        let sample = runThreaded(threads) { thread in
            var random = SplitMix64(seed: UInt64(thread) &+ 0xC4_07)
            var sum = 0
            for _ in 0..<operationsPerThread {
                let key = Int(random.next() % UInt64(keyCount))
                sum &+= (try? cache.withBytes(forKey: key, regenerate: regenerate) { Int($0[1]) }) ?? 0
            }
            if sum == 42 { print("") }
        }
        return sample.nanoseconds / Double(threads * operationsPerThread)
    }

    /// Nanoseconds per hot hit, one thread, 1,024 keys read in a scrambled order.
    static func hitRound(lookups: Int) throws -> Double {
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
        for key in 0..<1024 {
            try cache.insert(forKey: key, byteCount: byteCount) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(key & 255)) }
        }
        var sum = 0
        let time = nanoseconds {
            for index in 0..<lookups { sum &+= (try? cache.withBytes(forKey: (index &* 7919) & 1023) { Int($0[1]) }) ?? 0 }
        }
        if sum == 42 { print("") }
        return time / Double(lookups)
    }

    /// `--demotion-loop N`: nanoseconds per access, one thread, uniform keys over `keyCount`
    /// with a hot budget of 512 pages and no limit: after the first pass nearly every access
    /// re-pins a volatile entry or misses, and demotes the least recently used hot one.
    static func demotionLoop(operations: Int) throws -> Double {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 512 * page))
        let regenerate: (inout RegenerationContext<Int>) throws -> Void = { context in
            let key = context.key
            try context.write(byteCount: byteCount) { buffer in
                for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: key &+ index) }
                return buffer.count
            }
        }
        var random = SplitMix64(seed: 0xDE_40)
        var sum = 0
        for key in 0..<keyCount { sum &+= try cache.withBytes(forKey: key, regenerate: regenerate) { Int($0[1]) } }
        let time = try nanoseconds {
            for _ in 0..<operations {
                let key = Int(random.next() % UInt64(keyCount))
                sum &+= try cache.withBytes(forKey: key, regenerate: regenerate) { Int($0[1]) }
            }
        }
        if sum == 42 { print("") }
        return time / Double(operations)
    }

    /// `--churn-child ROUNDS [THREADS]`: the figures on one line, for the parent (or by hand,
    /// with another thread count).
    static func runChild(rounds: Int, threads: Int) throws {
        let figures = try measure(rounds: rounds, threads: threads)
        print("CHURN \(figures.churnTwoThreads) \(figures.hitOneThread)")
    }

    /// Runs this executable with `--churn-child` and `VOLATILE_READ_FENCES=1`.
    static func measureWithReaderFences(rounds: Int) throws -> ChurnFigures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--churn-child", String(rounds)]
        var environment = ProcessInfo.processInfo.environment
        environment["VOLATILE_READ_FENCES"] = "1"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let fields = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard process.terminationStatus == 0, fields.count == 3, fields[0] == "CHURN",
            let churn = Double(fields[1]), let hit = Double(fields[2])
        else {
            throw ChurnChildError(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
        }
        return ChurnFigures(churnTwoThreads: churn, hitOneThread: hit)
    }

    /// The rows: this process (membarrier) against the child (reader fences), alternating.
    static func rows(rounds: Int, notes: inout [String]) throws -> [Row] {
        var mine: [ChurnFigures] = []
        var fenced: [ChurnFigures] = []
        for _ in 0..<3 {
            mine.append(try measure(rounds: rounds))
            fenced.append(try measureWithReaderFences(rounds: rounds))
        }
        let churn = median(mine.map(\.churnTwoThreads)), churnFenced = median(fenced.map(\.churnTwoThreads))
        let hit = median(mine.map(\.hitOneThread)), hitFenced = median(fenced.map(\.hitOneThread))
        // As the cache decides it (it does not expose the mode): the environment, else membarrier.
        let mode = ProcessInfo.processInfo.environment["VOLATILE_READ_FENCES"] == "1" ? "reader fences" : "membarrier"
        notes.append(
            "churn (2 threads, 4,096 uniform keys, count limit 512, 256 B): \(formatNanoseconds(churn)) per operation with \(mode), "
                + "\(formatNanoseconds(churnFenced)) with reader fences; hot hit \(formatNanoseconds(hit)) vs \(formatNanoseconds(hitFenced))")
        return [
            Row(
                name: "churn_2t_membarrier_vs_fences", candidate: "2-thread misses, \(mode)", candidateNanoseconds: churn,
                baseline: "the same, reader fences", baselineNanoseconds: churnFenced, goal: nil),
            .context("hit_1t_membarrier_vs_fences", "hot hit, 1 thread, \(mode)", hit, vs: "the same, reader fences", hitFenced),
        ]
    }
}

struct ChurnChildError: Error, CustomStringConvertible {
    var status: Int32
    var output: String
    var description: String { "the --churn-child process exited with \(status): \(output)" }
}
