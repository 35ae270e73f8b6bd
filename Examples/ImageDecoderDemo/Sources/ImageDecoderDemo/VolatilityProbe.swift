import VolatileCache

/// What the volatile cache's `Volatility` did in this run: the swap environment it saw at its
/// last refresh, the swappable bytes at the end, hits on swappable images, swap-ins (re-pins
/// that took major faults), the learned swap costs, and the kind decided at each demotion.
/// Printed as a VOLATILITY line after a volatile run.
enum VolatilityProbe {
    static func line(statistics: VolatilityStatistics, report: WorkloadReport) -> String {
        func cost(_ value: Double?) -> String { value.map { fixed($0, 3) } ?? "-" }
        let environment = statistics.environment
        return "VOLATILITY policy=\(statistics.policy) swap_usable=\(environment.isUsable) headroom_mib=\(environment.headroomBytes >> 20)"
            + " swappiness=\(environment.swappiness.map(String.init) ?? "-")"
            + " swappable_mib=\(statistics.swappableBytes >> 20) swappable_hits=\(statistics.swappableHits)"
            + " swap_ins=\(statistics.swapInsObserved)"
            + " swap_in_ns_per_byte=\(cost(statistics.swapInNanosecondsPerByte)) swap_out_ns_per_byte=\(cost(statistics.swapOutNanosecondsPerByte))"
            + " decided_swappable=\(statistics.swappableDecisions) decided_volatile=\(statistics.volatileDecisions)"
    }
}
