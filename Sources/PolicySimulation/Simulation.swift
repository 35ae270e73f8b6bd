package import VolatileCache

/// Hit counts of one policy on one trace.
package struct SimulationResult: Sendable {
    /// The policy's name.
    package var policy: String
    /// Accesses replayed.
    package var accesses: Int
    /// Accesses that hit.
    package var hits: Int
    /// Accesses not marked as scans, and their hits.
    package var nonScanAccesses: Int
    package var nonScanHits: Int

    /// Hits over accesses.
    package var hitRate: Double { accesses > 0 ? Double(hits) / Double(accesses) : 0 }
    /// Hit rate of the accesses that are not part of a scan.
    package var nonScanHitRate: Double { nonScanAccesses > 0 ? Double(nonScanHits) / Double(nonScanAccesses) : 0 }
}

/// Replays traces through policies and computes the static optimum.
package enum Simulation {
    /// Replays `trace` through `policy`: an access hits if its key is resident.
    /// - Parameters:
    ///   - trace: The accesses.
    ///   - policy: A fresh policy (its capacity is the byte capacity).
    ///   - name: Its name in reports.
    /// - Returns: The hit counts.
    /// - Complexity: O(accesses) policy operations.
    package static func run<Policy: ResidencyPolicy<Int>>(_ trace: Trace, policy: Policy, name: String) -> SimulationResult {
        var policy = policy
        var result = SimulationResult(policy: name, accesses: 0, hits: 0, nonScanAccesses: 0, nonScanHits: 0)
        // The keys seen so far stand for the cache's entries (hot and volatile).
        var known = Set<Int>()
        for access in trace.accesses {
            if known.insert(access.key).inserted { policy.noteKnownKeys(known.count) }
            let hash = UInt64(UInt(bitPattern: access.key))
            let hit = policy.contains(access.key)
            if hit {
                policy.recordHit(access.key, hash: hash)
            } else {
                policy.recordMiss(access.key, hash: hash, weight: access.weight) { _ in }
            }
            result.accesses += 1
            if !access.isScan { result.nonScanAccesses += 1 }
            if hit {
                result.hits += 1
                if !access.isScan { result.nonScanHits += 1 }
            }
        }
        return result
    }

    /// The static optimum at `capacity`: the keys with the highest empirical frequency per byte
    /// over the whole trace, greedily, skipping any that no longer fit; each access of a chosen
    /// key is a hit (no warm-up misses: an upper bound for any policy that fixes its content).
    /// With `coldStart`, the first access of every key is a miss, as for any cache that starts
    /// empty: the fair bound on a short trace, where those misses weigh.
    /// - Parameters:
    ///   - trace: The accesses.
    ///   - capacity: The byte capacity.
    ///   - coldStart: Whether first accesses miss.
    /// - Returns: The hit counts of the optimum (and the keys it keeps).
    /// - Complexity: O(accesses + keys log keys).
    package static func staticOptimum(_ trace: Trace, capacity: Int, coldStart: Bool = false) -> (result: SimulationResult, keys: Set<Int>) {
        var counts: [Int: (count: Int, weight: Int)] = [:]
        for access in trace.accesses {
            counts[access.key, default: (0, access.weight)].count += 1
            counts[access.key]!.weight = access.weight  // the latest size, as a cache would hold
        }
        let ranked = counts.sorted { lhs, rhs in
            let left = Double(lhs.value.count) / Double(lhs.value.weight), right = Double(rhs.value.count) / Double(rhs.value.weight)
            return left != right ? left > right : lhs.key < rhs.key
        }
        var chosen = Set<Int>()
        var used = 0
        for (key, value) in ranked where used + value.weight <= capacity {
            chosen.insert(key)
            used += value.weight
        }
        var result = SimulationResult(policy: coldStart ? "optimum-cold" : "optimum", accesses: 0, hits: 0, nonScanAccesses: 0, nonScanHits: 0)
        var seen = Set<Int>()
        for access in trace.accesses {
            let first = seen.insert(access.key).inserted
            let hit = chosen.contains(access.key) && !(coldStart && first)
            result.accesses += 1
            if !access.isScan { result.nonScanAccesses += 1 }
            if hit {
                result.hits += 1
                if !access.isScan { result.nonScanHits += 1 }
            }
        }
        return (result, chosen)
    }

    /// LRU, the adaptive policy, and the optimum on one trace at one capacity.
    /// - Parameters:
    ///   - trace: The accesses.
    ///   - capacity: Byte capacity.
    ///   - expectedEntries: Keys to size the sketch for (nil: grow with the keys seen).
    ///   - doorkeeper: Also run the adaptive policy with a doorkeeper.
    /// - Returns: One result per policy, then the optimum and the optimum with cold misses.
    package static func compare(_ trace: Trace, capacity: Int, expectedEntries: Int? = nil, doorkeeper: Bool = false) -> [SimulationResult] {
        var results = [
            run(trace, policy: LRUPolicy<Int>(capacity: capacity), name: "lru"),
            run(trace, policy: AdaptivePolicy<Int>(capacity: capacity, expectedEntries: expectedEntries), name: "adaptive"),
        ]
        if doorkeeper {
            results.append(run(
                trace, policy: AdaptivePolicy<Int>(capacity: capacity, expectedEntries: expectedEntries, usesDoorkeeper: true),
                name: "adaptive+doorkeeper"))
        }
        results.append(staticOptimum(trace, capacity: capacity).result)
        results.append(staticOptimum(trace, capacity: capacity, coldStart: true).result)
        return results
    }
}
