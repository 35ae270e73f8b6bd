package import VolatileCache

// The synthetic workloads replayed through a real `VolatileCache` (not the policy component):
// what the wired policy achieves, frequency from the read buffers included. Entries are 64
// bytes (one page each); the capacity is the count limit (equal sizes) or the cost limit with
// cost = the trace's weight (sizes), so no real memory pressure is involved.
package enum CacheReplay {
    /// Replays `trace` through a cache with `policy`.
    /// - Parameters:
    ///   - trace: The accesses.
    ///   - policy: The cache's policy.
    ///   - capacity: Entries (`weighted` false: the count limit) or total weight (the cost limit).
    ///   - weighted: Whether the capacity is a cost limit with cost = weight.
    /// - Returns: The hit counts, named `cache-<policy>`.
    /// - Throws: The cache's errors.
    package static func run(_ trace: Trace, policy: CachePolicy, capacity: Int, weighted: Bool) throws -> SimulationResult {
        var configuration = VolatileCache<Int>.Configuration()
        configuration.policy = policy
        if weighted { configuration.totalCostLimit = capacity } else { configuration.countLimit = capacity }
        configuration.arena.regionByteCount = 16 << 20
        configuration.arena.minimumRegionByteCount = 16 << 20
        let cache = try VolatileCache<Int>(configuration: configuration)
        var result = SimulationResult(policy: "cache-\(policy.rawValue)", accesses: 0, hits: 0, nonScanAccesses: 0, nonScanHits: 0)
        for access in trace.accesses {
            var missed = false
            try cache.withBytes(forKey: access.key, regenerate: { context in
                missed = true
                try context.write(byteCount: 64, cost: weighted ? access.weight : nil) { buffer in
                    buffer.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: access.key))
                    return 64
                }
            }) { bytes in
                precondition(bytes.count == 64 && bytes[0] == UInt8(truncatingIfNeeded: access.key), "wrong content for key \(access.key)")
            }
            result.accesses += 1
            if !missed { result.hits += 1 }
            if !access.isScan {
                result.nonScanAccesses += 1
                if !missed { result.nonScanHits += 1 }
            }
        }
        return result
    }

    /// The synthetic suite (``SimulationReport/syntheticSuite(doorkeeper:)``'s workloads) through
    /// the real cache: LRU, adaptive, and the static optimum (with and without cold misses).
    /// - Returns: The rows, in the simulator's table format (`lru`/`adaptive` are the cache's).
    /// - Throws: The cache's errors.
    package static func syntheticSuite() throws -> [SimulationReport.Row] {
        let items = SimulationReport.items, capacity = SimulationReport.capacity
        let accesses = SimulationReport.accesses, seed = SimulationReport.seed
        func row(_ name: String, _ capacityText: String, _ trace: Trace, _ capacity: Int, weighted: Bool) throws -> SimulationReport.Row {
            var lru = try run(trace, policy: .lru, capacity: capacity, weighted: weighted)
            lru.policy = "lru"
            var adaptive = try run(trace, policy: .adaptive, capacity: capacity, weighted: weighted)
            adaptive.policy = "adaptive"
            // The optimum in entries: every weight 1 when the capacity counts entries.
            let measured = weighted ? trace : Trace(accesses: trace.accesses.map { .init(key: $0.key, weight: 1, isScan: $0.isScan) })
            var optimum = Simulation.staticOptimum(measured, capacity: capacity).result
            optimum.policy = "optimum"
            var cold = Simulation.staticOptimum(measured, capacity: capacity, coldStart: true).result
            cold.policy = "optimum-cold"
            return SimulationReport.Row(workload: name, capacity: capacityText, results: [lru, adaptive, optimum, cold])
        }
        var rows: [SimulationReport.Row] = []
        let capacityText = "\(capacity) of \(items) keys"
        for exponent in [0.8, 1.0, 1.2] {
            let trace = SyntheticWorkload.zipf(items: items, exponent: exponent, accesses: accesses, seed: seed)
            rows.append(try row("zipf \(exponent)", capacityText, trace, capacity, weighted: false))
        }
        let scans = SyntheticWorkload.zipfWithScans(items: items, exponent: 1.0, accesses: accesses, scanEvery: 10_000, seed: seed)
        rows.append(try row("zipf 1.0 + full scan every 10k", capacityText, scans, capacity, weighted: false))
        let shifting = SyntheticWorkload.shiftingZipf(items: items, exponent: 1.0, accesses: accesses, seed: seed)
        rows.append(try row("zipf 1.0, popular set moves at 1/2", capacityText, shifting, capacity, weighted: false))
        let sized = SyntheticWorkload.zipfVariableSizes(
            items: 704, exponent: 1.1, accesses: accesses, minimumWeight: 45 << 10, maximumWeight: 6_656 << 10, seed: seed)
        let totalBytes = Set(sized.accesses.map { [$0.key, $0.weight] }).reduce(0) { $0 + $1[1] }
        let byteCapacity = totalBytes / 5
        rows.append(try row("zipf 1.1, 704 keys 45 KiB-6.5 MiB", "20 % of bytes (\(byteCapacity >> 20) MiB)", sized, byteCapacity, weighted: true))
        return rows
    }
}
