#if canImport(Glibc)
import Glibc
import VolatileCache
#endif

/// Monotonic time in nanoseconds.
@inline(__always)
func now() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Wall time of `body`, in nanoseconds.
func nanoseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = now()
    try body()
    return Double(now() - start)
}

/// Median of a sample set.
func median(_ samples: [Double]) -> Double {
    guard !samples.isEmpty else { return .nan }
    let sorted = samples.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// One table row: a candidate measured beside its baseline in the same run (figures are
/// medians, in nanoseconds unless `unit` says otherwise).
struct Row {
    var name: String
    var candidate: String
    var candidateNanoseconds: Double
    var baseline: String
    var baselineNanoseconds: Double
    /// The ratio must stay at or under it (nil: no goal).
    var goal: Double? = nil
    /// Rows that are context, not a goal (printed, not in the RATIO line).
    var inRatioLine = true
    /// A goal the ratio must reach (scaling figures: higher is better).
    var higherGoal: Double? = nil
    /// The figures' unit when they are not nanoseconds (e.g. "B" for bytes per entry).
    var unit: String? = nil
    /// Set for scaling rows: the median over rounds of each round's own ratio (its two
    /// figures taken back to back), which the row reports instead of the medians' ratio.
    var pairedRatio: Double? = nil
    var ratio: Double { pairedRatio ?? candidateNanoseconds / baselineNanoseconds }

    /// A row that is context: no goal, not in the RATIO line.
    static func context(_ name: String, _ candidate: String, _ candidateNanoseconds: Double, vs baseline: String, _ baselineNanoseconds: Double) -> Row {
        Row(
            name: name, candidate: candidate, candidateNanoseconds: candidateNanoseconds, baseline: baseline,
            baselineNanoseconds: baselineNanoseconds, inRatioLine: false)
    }
}

/// Runs `rounds` rounds; each round times one candidate sample and one baseline sample
/// (alternating which goes first), interleaved so that machine noise hits both alike.
/// The set-up closures run untimed before each sample: `setUp` (the state both sides start
/// from), then the side's own.
func compare(
    _ name: String, candidate candidateName: String, baseline baselineName: String, rounds: Int, goal: Double?,
    setUp: () -> Void = {}, candidateSetUp: () -> Void = {}, candidate: () -> Void,
    baselineSetUp: () -> Void = {}, baseline: () -> Void
) -> Row {
    var candidateSamples: [Double] = []
    var baselineSamples: [Double] = []
    candidateSamples.reserveCapacity(rounds)
    baselineSamples.reserveCapacity(rounds)
    for round in 0..<(rounds + rounds / 10) {
        let warmUp = round < rounds / 10
        func sample(_ sideSetUp: () -> Void, _ body: () -> Void, into samples: inout [Double]) {
            setUp()
            sideSetUp()
            let start = now()
            body()
            let elapsed = Double(now() - start)
            if !warmUp { samples.append(elapsed) }
        }
        if round % 2 == 0 {
            sample(candidateSetUp, candidate, into: &candidateSamples)
            sample(baselineSetUp, baseline, into: &baselineSamples)
        } else {
            sample(baselineSetUp, baseline, into: &baselineSamples)
            sample(candidateSetUp, candidate, into: &candidateSamples)
        }
    }
    return Row(
        name: name, candidate: candidateName, candidateNanoseconds: median(candidateSamples),
        baseline: baselineName, baselineNanoseconds: median(baselineSamples), goal: goal)
}

func formatNanoseconds(_ value: Double) -> String {
    if value >= 1_000_000 { return String(format2(value / 1_000_000)) + " ms" }
    if value >= 1_000 { return String(format2(value / 1_000)) + " µs" }
    return String(format2(value)) + " ns"
}

/// Two decimals without Foundation.
func format2(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    let scaled = (value * 100).rounded()
    let whole = Int(scaled / 100)
    let fraction = Int(abs(scaled).truncatingRemainder(dividingBy: 100))
    return "\(value < 0 && whole == 0 ? "-" : "")\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// The hit benchmarks' object: 256 bytes derived from the key (the baselines hold the same
/// bytes), so every structure serves identical content.
let hotObjectRegenerator: @Sendable (inout RegenerationContext<Int>) throws -> Void = { context in
    let key = context.key
    try context.write(byteCount: 256) { buffer in
        for index in 0..<256 { buffer[index] = UInt8(truncatingIfNeeded: key &+ index) }
        return 256
    }
}
