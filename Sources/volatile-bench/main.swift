// volatile-bench: micro benchmarks of the memory layer and the cache, each measured beside
// its baseline in the same run (interleaved), reported as ratios of medians.
//
//     swift run -c release volatile-bench [--rounds N]
#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

var rounds = 2000
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--rounds":
        guard let value = arguments.popFirst().flatMap({ Int($0) }), value > 0 else {
            printError("volatile-bench: --rounds needs a positive number")
            exit(2)
        }
        rounds = value
    case "--help", "-h":
        print("usage: volatile-bench [--rounds N]")
        exit(0)
    default:
        printError("volatile-bench: unknown argument \(argument)")
        exit(2)
    }
}

var comparisons: [Comparison] = []
do {
    comparisons += try MemoryBenchmarks.run(rounds: rounds)
} catch {
    printError("volatile-bench: memory benchmarks failed: \(error)")
    exit(1)
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

print(pad("benchmark", 24) + pad("candidate", 40) + pad("median", 12) + pad("baseline", 40) + pad("median", 12) + pad("ratio", 8) + "goal")
for comparison in comparisons {
    let goal = comparison.goal.map { "<= \(format2($0)) " + (comparison.ratio <= $0 ? "met" : "MISSED") } ?? ""
    print(
        pad(comparison.name, 24) + pad(comparison.candidate, 40) + pad(formatNanoseconds(comparison.candidateNanoseconds), 12)
            + pad(comparison.baseline, 40) + pad(formatNanoseconds(comparison.baselineNanoseconds), 12)
            + pad(format2(comparison.ratio), 8) + goal)
}
let ratioLine = comparisons.map { "\($0.name)=\(format2($0.ratio))" }.joined(separator: " ")
print("RATIO \(ratioLine)")
