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
        let results = Simulation.compare(trace, capacity: Self.capacity)
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
            scanned, policy: AdaptivePolicy<Int>(capacity: Self.capacity), name: "adaptive")
        let lruWithScans = Simulation.run(scanned, policy: LRUPolicy<Int>(capacity: Self.capacity), name: "lru")
        // On every access, scans included.
        #expect(adaptive.hitRate >= lruWithoutScans.hitRate - 0.02, "adaptive \(adaptive.hitRate) vs LRU without scans \(lruWithoutScans.hitRate)")
        // The Zipf accesses themselves barely notice the scans under the adaptive policy.
        #expect(adaptive.nonScanHitRate >= lruWithoutScans.hitRate)
        #expect(lruWithScans.nonScanHitRate < lruWithoutScans.hitRate, "the scans do hurt LRU")
    }

    @Test("a one-time sweep does not flush the frequent keys")
    func scanResistance() {
        var adaptive = AdaptivePolicy<Int>(capacity: Self.capacity)
        var lru = LRUPolicy<Int>(capacity: Self.capacity)
        var known = Set<Int>()
        let warm = SyntheticWorkload.zipf(items: Self.items, exponent: 1.0, accesses: 20_000, seed: Self.seed)
        _ = replay(warm.accesses, into: &adaptive, known: &known)
        _ = replay(warm.accesses, into: &lru, known: &known)
        let top = ZipfGenerator(count: Self.items, exponent: 1.0, seed: Self.seed).keyForRank.prefix(50)
        let kept = top.filter { adaptive.contains($0) }
        #expect(kept.count >= 45)
        // Sweep 10x the capacity of keys never seen before (which also grows the sketch: the
        // incumbents' counts are carried over).
        let sweep = (1_000_000..<1_001_000).map { Trace.Access(key: $0, weight: 1) }
        let sketchBefore = adaptive.admission.sketch.capacity
        _ = replay(sweep, into: &adaptive, known: &known)
        #expect(adaptive.admission.sketch.capacity > sketchBefore)
        _ = replay(sweep, into: &lru, known: &known)
        #expect(kept.allSatisfy { adaptive.contains($0) }, "the adaptive policy kept its frequent keys")
        #expect(top.filter { lru.contains($0) }.isEmpty, "LRU lost all of them (the sweep is effective)")
    }

    @Test("a popular set that moves is followed (halving ages the old one out)")
    func shift() {
        let trace = SyntheticWorkload.shiftingZipf(items: Self.items, exponent: 1.0, accesses: Self.accesses, seed: Self.seed)
        let secondHalf = Trace(accesses: Array(trace.accesses[(Self.accesses / 2)...]))
        var adaptive = AdaptivePolicy<Int>(capacity: Self.capacity)
        var known = Set<Int>()
        _ = replay(trace.accesses[..<(Self.accesses / 2)], into: &adaptive, known: &known)
        let hits = replay(secondHalf.accesses[...], into: &adaptive, known: &known)
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

    /// Replays accesses as `Simulation.run` does (the keys seen stand for the cache's entries).
    /// - Returns: The hits.
    private func replay(_ accesses: some Collection<Trace.Access>, into policy: inout some ResidencyPolicy<Int>, known: inout Set<Int>) -> Int {
        var hits = 0
        for access in accesses {
            if known.insert(access.key).inserted { policy.noteKnownKeys(known.count) }
            let hash = UInt64(access.key)
            if policy.recordHit(access.key, hash: hash) {
                hits += 1
            } else {
                policy.recordMiss(access.key, hash: hash, weight: access.weight) { _ in }
            }
        }
        return hits
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
