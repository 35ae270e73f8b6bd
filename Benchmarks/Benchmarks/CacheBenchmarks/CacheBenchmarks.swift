// The cache's three access paths, each with thresholds checked in under `Thresholds/` (names
// without spaces or punctuation: the threshold reader looks files up by the raw name):
// - hot hit: a lock-free look-up of a hot 256-byte object (no allocation, no lock);
// - miss: a removed key requested again (regeneration of 64 KiB into a recycled extent);
// - re-pin: a volatile (shed) 64 KiB object pinned again with every page intact.
import Benchmark
import VolatileCache

/// Allocation counts are exact and machine-independent: the hit path must not allocate.
/// Time thresholds are loose (on the shared 2-core machine p90 moved by 160 % between two
/// runs): they catch order-of-magnitude regressions only; allocations are the exact check.
private var timeTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [.p50: 300.0, .p90: 400.0], absolute: [:]) }
private var allocationTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [:], absolute: [.p50: 0, .p90: 0]) }

private func fill(_ buffer: UnsafeMutableRawBufferPointer, key: Int) {
    for index in stride(from: 0, to: buffer.count, by: 64) { buffer[index] = UInt8(truncatingIfNeeded: key &+ index) }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    Benchmark(
        "HotHit_1024keys_256B",
        configuration: .init(thresholds: [.wallClock: timeTolerance, .throughput: timeTolerance, .mallocCountTotal: allocationTolerance])
    ) { (benchmark: Benchmark, cache: VolatileCache<Int>) in
        var sum = 0
        for index in benchmark.scaledIterations {
            sum &+= (try? cache.withBytes(forKey: (index &* 7919) & 1023) { Int($0[1]) }) ?? 0
        }
        blackHole(sum)
    } setup: {
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
        for key in 0..<1024 { try cache.insert(forKey: key, byteCount: 256) { fill($0, key: key) } }
        return cache
    }

    Benchmark(
        "MissRegenerate_64KiB_recycledExtent",
        configuration: .init(scalingFactor: .one, thresholds: [.wallClock: timeTolerance, .throughput: timeTolerance])
    ) { (benchmark: Benchmark, cache: VolatileCache<Int>) in
        for _ in benchmark.scaledIterations {
            cache.removeValue(forKey: 1)
            do {
                let byte = try cache.withBytes(forKey: 1, regenerate: { context in
                    try context.write(byteCount: 64 << 10) { buffer in
                        fill(buffer, key: 1)
                        return buffer.count
                    }
                }) { $0[64] }
                blackHole(byte)
            } catch {
                fatalError("miss failed: \(error)")
            }
        }
    } setup: {
        try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
    }

    Benchmark(
        "RepinIntact_64KiB_afterShed",
        configuration: .init(scalingFactor: .one, thresholds: [.wallClock: timeTolerance, .throughput: timeTolerance])
    ) { (benchmark: Benchmark, cache: VolatileCache<Int>) in
        for _ in benchmark.scaledIterations {
            cache.shed()
            blackHole(try? cache.withBytes(forKey: 1) { $0[64] })
        }
    } setup: {
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 64 << 20))
        try cache.insert(forKey: 1, byteCount: 64 << 10) { fill($0, key: 1) }
        return cache
    }
}
