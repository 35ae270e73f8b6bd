import Glibc
import PolicySimulation

// volatile-policy-sim: replays access traces through LRU and the adaptive policy (W-TinyLFU)
// and compares them with the static optimum at the same byte capacity. See `usage`.

let usage = """
    volatile-policy-sim: hit rates of LRU, the adaptive policy and the static optimum

    USAGE: volatile-policy-sim [--doorkeeper]
           volatile-policy-sim --cache
           volatile-policy-sim --trace PATH [--capacity-mib N]... [--doorkeeper]

    With no --trace, runs the synthetic suite (Zipf 0.8/1.0/1.2 with equal sizes, Zipf 1.0 with
    periodic full scans, a popular set that moves halfway, Zipf 1.1 with demo-like sizes).

    OPTIONS:
      --trace PATH        Replay a trace (`image-decoder-demo --trace PATH` writes one: lines
                          `index byteCount`).
      --capacity-mib N    Byte capacity (repeatable; default: the trace's resident_bytes comment,
                          the cache's measured resident bytes at the end of the recorded run).
      --doorkeeper        Also run the adaptive policy with a doorkeeper (Bloom filter).
      --replicate-demo N  Replay N accesses of the demo's default sequence (704 items, Zipf 1.1,
                          seed 24301; checked against the trace) with the trace's sizes: the
                          steady state of a run longer than the recording.
      --cache             Run the synthetic suite through a real VolatileCache instead (the
                          policy as wired: count or cost limit, frequency from the read
                          buffers): lru and adaptive are Configuration.policy .lru and .adaptive.
      -h, --help          Show this help.

    Hit rates in parentheses exclude the accesses of scans.
    """

var tracePath: String?
var capacities: [Int] = []
var doorkeeper = false
var replicate: (accesses: Int, exponent: Double, seed: UInt64)?
var throughCache = false
var arguments = Array(CommandLine.arguments.dropFirst())[...]
func fail(_ message: String) -> Never {
    let line = "volatile-policy-sim: \(message)\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    exit(2)
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--trace":
        guard let path = arguments.popFirst() else { fail("--trace needs a path") }
        tracePath = path
    case "--capacity-mib":
        guard let text = arguments.popFirst(), let mib = Double(text), mib > 0 else { fail("--capacity-mib needs a positive number") }
        capacities.append(Int(mib * 1_048_576))
    case "--doorkeeper": doorkeeper = true
    case "--cache": throughCache = true
    case "--replicate-demo":
        guard let text = arguments.popFirst(), let count = Int(text), count > 0 else { fail("--replicate-demo needs a positive count") }
        replicate = (count, 1.1, 24301)
    case "-h", "--help":
        print(usage)
        exit(0)
    default: fail("unknown argument \"\(argument)\" (see --help)")
    }
}

if throughCache {
    do {
        print("synthetic suite through VolatileCache (count limit, or cost limit = bytes for the sized workload)")
        print(SimulationReport.table(try CacheReplay.syntheticSuite()))
    } catch {
        fail("\(error)")
    }
    exit(0)
}
guard let tracePath else {
    print(SimulationReport.table(SimulationReport.syntheticSuite(doorkeeper: doorkeeper)))
    exit(0)
}
var trace: Trace
do {
    trace = try Trace.load(path: tracePath)
} catch {
    fail("\(error)")
}
if let replicate {
    // The demo's access law is deterministic (its Zipf sampler: seeded shuffle, then draws),
    // and ZipfGenerator is the same algorithm: a longer run of the same sequence, with the
    // sizes the trace recorded, shows the steady state a short recording cannot.
    var sizes: [Int: Int] = [:]
    for access in trace.accesses { sizes[access.key] = access.weight }
    let generated = SyntheticWorkload.zipf(items: 704, exponent: replicate.exponent, accesses: replicate.accesses, seed: replicate.seed)
    let matching = zip(generated.accesses, trace.accesses).prefix { $0.key == $1.key }.count
    guard matching == min(generated.accesses.count, trace.accesses.count) else {
        fail("the trace is not the demo's default sequence (704 items, Zipf 1.1, seed 24301): first difference at access \(matching)")
    }
    let missing = Set(generated.accesses.map(\.key)).subtracting(sizes.keys).count
    print("replicated the demo's sequence to \(replicate.accesses) accesses (the trace's \(trace.accesses.count) match it); \(missing) keys never in the trace get the median size")
    let median = sizes.values.sorted()[sizes.count / 2]
    trace = Trace(
        accesses: generated.accesses.map { Trace.Access(key: $0.key, weight: sizes[$0.key] ?? median) },
        residentBytes: trace.residentBytes)
}
if capacities.isEmpty {
    guard let resident = trace.residentBytes else { fail("the trace has no resident_bytes comment: give --capacity-mib") }
    capacities = [resident]
}
var distinct: [Int: Int] = [:]
for access in trace.accesses { distinct[access.key] = access.weight }
let totalBytes = distinct.values.reduce(0, +)
print("trace: \(trace.accesses.count) accesses, \(distinct.count) distinct keys, \(totalBytes >> 20) MiB distinct bytes")
let rows = capacities.map { capacity in
    SimulationReport.Row(
        workload: (tracePath.split(separator: "/").last.map(String.init) ?? tracePath),
        capacity: SimulationReport.fixed(Double(capacity) / 1_048_576, 1) + " MiB",
        results: Simulation.compare(trace, capacity: capacity, doorkeeper: doorkeeper))
}
print(SimulationReport.table(rows))
