import VolatileCache

/// What `Volatility.automatic` would decide in this environment, from real inputs: the swap
/// environment the child sees inside its cgroup, a 4 MiB swap calibration, and the decode cost
/// the workload measured. Printed as a VOLATILITY line after a volatile run (the cache's
/// demotion does not consult the advisor yet: this says what it will do once it does).
enum VolatilityProbe {
    static func line(report: WorkloadReport, gallery: Gallery) -> String {
        let environment = SwapEnvironment.current()
        var advisor = VolatilityAdvisor(policy: .automatic, environment: environment)
        let sample = SwapCalibration.measure()
        if let sample { advisor.recordCalibration(sample) }
        let averageBytes = gallery.items.isEmpty ? 0 : gallery.totalByteCount / gallery.items.count
        var regeneration = RegenerationCost()
        if report.figures.regenerations > 0 {
            regeneration.add(nanoseconds: report.decodeSeconds * 1e9, bytes: report.figures.regenerations * averageBytes)
        }
        let decision: String
        switch advisor.decide(bytes: averageBytes, regeneration: regeneration) {
        case .swappable: decision = advisor.swapIn.nanosecondsPerByte == nil ? "swappable(exploring)" : "swappable"
        case .volatile(let reason): decision = "volatile(\(reason))"
        }
        func cost(_ value: Double?) -> String { value.map { fixed($0, 3) } ?? "-" }
        return "VOLATILITY swap_usable=\(environment.isUsable) headroom_mib=\(environment.headroomBytes >> 20)"
            + " swappiness=\(environment.swappiness.map(String.init) ?? "-")"
            + " calibrated_out_mib=\(fixed(Double(sample?.swappedOutBytes ?? 0) / 1_048_576, 1))"
            + " swap_in_ns_per_byte=\(cost(advisor.swapIn.nanosecondsPerByte)) swap_out_ns_per_byte=\(cost(advisor.swapOut.nanosecondsPerByte))"
            + " decode_ns_per_byte=\(cost(regeneration.nanosecondsPerByte)) automatic=\(decision)"
    }
}
