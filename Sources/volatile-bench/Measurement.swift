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
func nanoseconds(_ body: () -> Void) -> Double {
    let start = now()
    body()
    return Double(now() - start)
}

/// Median of a sample set.
func median(_ samples: [Double]) -> Double {
    guard !samples.isEmpty else { return .nan }
    let sorted = samples.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// A candidate measured beside its baseline in the same run, interleaved round by round so
/// that machine noise hits both alike. Figures are medians in nanoseconds.
struct Comparison {
    var name: String
    var candidate: String
    var baseline: String
    var candidateNanoseconds: Double
    var baselineNanoseconds: Double
    var goal: Double?

    var ratio: Double { candidateNanoseconds / baselineNanoseconds }
}

/// Runs `rounds` rounds; each round times one candidate sample and one baseline sample
/// (alternating which goes first). `setUp` closures run untimed before each sample.
func compare(
    _ name: String, candidate candidateName: String, baseline baselineName: String, rounds: Int, goal: Double?,
    candidateSetUp: () -> Void, candidate: () -> Void,
    baselineSetUp: () -> Void, baseline: () -> Void
) -> Comparison {
    var candidateSamples: [Double] = []
    var baselineSamples: [Double] = []
    candidateSamples.reserveCapacity(rounds)
    baselineSamples.reserveCapacity(rounds)
    for round in 0..<(rounds + rounds / 10) {
        let warmUp = round < rounds / 10
        func runCandidate() {
            candidateSetUp()
            let start = now()
            candidate()
            let elapsed = Double(now() - start)
            if !warmUp { candidateSamples.append(elapsed) }
        }
        func runBaseline() {
            baselineSetUp()
            let start = now()
            baseline()
            let elapsed = Double(now() - start)
            if !warmUp { baselineSamples.append(elapsed) }
        }
        if round % 2 == 0 { runCandidate(); runBaseline() } else { runBaseline(); runCandidate() }
    }
    return Comparison(
        name: name, candidate: candidateName, baseline: baselineName,
        candidateNanoseconds: median(candidateSamples), baselineNanoseconds: median(baselineSamples), goal: goal)
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
