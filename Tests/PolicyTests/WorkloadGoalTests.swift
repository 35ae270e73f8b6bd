import PolicySimulation
import Testing
@testable import VolatileCache

// Issue 15's goals on synthetic traces, asserted on hit rates (deterministic seeds, no timing).
@Suite("Policy goals on synthetic workloads")
struct WorkloadGoalTests {
    static let items = SimulationReport.items
    static let capacity = SimulationReport.capacity
    static let accesses = SimulationReport.accesses
    static let seed = SimulationReport.seed

    @Test("Zipf with equal sizes: at least 95 % of the static optimum", arguments: [1.0, 1.2])
    func zipfNearOptimum(exponent: Double) {
        let trace = SyntheticWorkload.zipf(items: Self.items, exponent: exponent, accesses: Self.accesses, seed: Self.seed)
        let results = Simulation.compare(trace, capacity: Self.capacity, expectedEntries: Self.capacity)
        let lru = results[0], adaptive = results[1], optimum = results[2]
        #expect(adaptive.hitRate >= 0.95 * optimum.hitRate, "adaptive \(adaptive.hitRate) vs optimum \(optimum.hitRate)")
        #expect(adaptive.hitRate > lru.hitRate, "adaptive \(adaptive.hitRate) vs LRU \(lru.hitRate)")
    }

    @Test("periodic full scans: no worse than LRU without scans, less 2 points")
    func scans() {
        let plain = SyntheticWorkload.zipf(items: Self.items, exponent: 1.0, accesses: Self.accesses, seed: Self.seed)
        let scanned = SyntheticWorkload.zipfWithScans(
            items: Self.items, exponent: 1.0, accesses: Self.accesses, scanEvery: 10_000, seed: Self.seed)
        #expect(scanned.accesses.count > plain.accesses.count)
        let lruWithoutScans = Simulation.run(plain, policy: LRUPolicy<Int>(capacity: Self.capacity), name: "lru")
        let adaptive = Simulation.run(
            scanned, policy: AdaptivePolicy<Int>(capacity: Self.capacity, expectedEntries: Self.capacity), name: "adaptive")
        let lruWithScans = Simulation.run(scanned, policy: LRUPolicy<Int>(capacity: Self.capacity), name: "lru")
        // On every access, scans included.
        #expect(adaptive.hitRate >= lruWithoutScans.hitRate - 0.02, "adaptive \(adaptive.hitRate) vs LRU without scans \(lruWithoutScans.hitRate)")
        // The Zipf accesses themselves barely notice the scans under the adaptive policy.
        #expect(adaptive.nonScanHitRate >= lruWithoutScans.hitRate)
        #expect(lruWithScans.nonScanHitRate < lruWithoutScans.hitRate, "the scans do hurt LRU")
    }

    @Test("a one-time sweep does not flush the frequent keys")
    func scanResistance() {
        var adaptive = AdaptivePolicy<Int>(capacity: Self.capacity, expectedEntries: Self.capacity)
        var lru = LRUPolicy<Int>(capacity: Self.capacity)
        let warm = SyntheticWorkload.zipf(items: Self.items, exponent: 1.0, accesses: 20_000, seed: Self.seed)
        for access in warm.accesses {
            let hash = UInt64(access.key)
            if !adaptive.recordHit(access.key, hash: hash) { adaptive.recordMiss(access.key, hash: hash, weight: 1) { _ in } }
            if !lru.recordHit(access.key, hash: hash) { lru.recordMiss(access.key, hash: hash, weight: 1) { _ in } }
        }
        let top = ZipfGenerator(count: Self.items, exponent: 1.0, seed: Self.seed).keyForRank.prefix(50)
        #expect(top.filter { adaptive.contains($0) }.count >= 48)
        // Sweep 10x the capacity of keys never seen before.
        for key in 1_000_000..<1_001_000 {
            adaptive.recordMiss(key, hash: UInt64(key), weight: 1) { _ in }
            lru.recordMiss(key, hash: UInt64(key), weight: 1) { _ in }
        }
        #expect(top.filter { adaptive.contains($0) }.count >= 48, "the adaptive policy kept its frequent keys")
        #expect(top.filter { lru.contains($0) }.isEmpty, "LRU lost all of them (the sweep is effective)")
    }

    @Test("a popular set that moves is followed (halving ages the old one out)")
    func shift() {
        let trace = SyntheticWorkload.shiftingZipf(items: Self.items, exponent: 1.0, accesses: Self.accesses, seed: Self.seed)
        let secondHalf = Trace(accesses: Array(trace.accesses[(Self.accesses / 2)...]))
        var adaptive = AdaptivePolicy<Int>(capacity: Self.capacity, expectedEntries: Self.capacity)
        var hits = 0
        for (index, access) in trace.accesses.enumerated() {
            let hash = UInt64(access.key)
            let hit = adaptive.recordHit(access.key, hash: hash)
            if !hit { adaptive.recordMiss(access.key, hash: hash, weight: 1) { _ in } }
            if hit && index >= Self.accesses / 2 { hits += 1 }
        }
        let optimumSecondHalf = Simulation.staticOptimum(secondHalf, capacity: Self.capacity).result
        let secondHalfRate = Double(hits) / Double(secondHalf.accesses.count)
        #expect(secondHalfRate >= 0.9 * optimumSecondHalf.hitRate, "second half \(secondHalfRate) vs its optimum \(optimumSecondHalf.hitRate)")
    }

    @Test("variable sizes: frequency per byte beats LRU")
    func variableSizes() {
        let trace = SyntheticWorkload.zipfVariableSizes(
            items: 704, exponent: 1.1, accesses: 100_000, minimumWeight: 45 << 10, maximumWeight: 6_656 << 10, seed: Self.seed)
        var sizes: [Int: Int] = [:]
        for access in trace.accesses { sizes[access.key] = access.weight }
        let capacity = sizes.values.reduce(0, +) / 5
        let results = Simulation.compare(trace, capacity: capacity)
        let lru = results[0], adaptive = results[1], optimum = results[2]
        #expect(adaptive.hitRate > lru.hitRate + 0.05, "adaptive \(adaptive.hitRate) vs LRU \(lru.hitRate)")
        #expect(adaptive.hitRate <= optimum.hitRate + 0.01)
    }

    @Test("traces round-trip through their text form")
    func traceText() throws {
        let trace = Trace(accesses: [.init(key: 3, weight: 4_096), .init(key: 0, weight: 46_080)], residentBytes: 123_456)
        let parsed = try Trace.parse("# image-decoder-demo trace\n" + trace.text)
        #expect(parsed.accesses == trace.accesses)
        #expect(parsed.residentBytes == 123_456)
        #expect(throws: Trace.ParseError.self) { try Trace.parse("1 2\n3\n") }
    }
}
