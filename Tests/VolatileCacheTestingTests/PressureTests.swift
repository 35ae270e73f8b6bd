import Glibc
import Testing
import VolatileCacheTesting

// Real memory pressure: volatile-stress runs inside a memory cgroup (MemoryPressureSandbox)
// whose limit is far below its working set. No drop is injected here: every drop the cache
// detects was made by the kernel's reclaim. Serialized: two of these at once would compete for
// the two cores and make each other's timings meaningless.

@Suite(.requiresMemoryPressureSandbox, .serialized)
struct PressureTests {
    static let limit = 128 << 20

    /// `VOLATILE_TEST_TIME_SCALE=N` stretches the workloads' durations and timeouts N times (1 to
    /// 20): the kernel matrix sets it in emulated guests, where the stress tool runs about 10
    /// times slower and would not fill its working set in the host's few seconds.
    static let timeScale: Double = {
        let value = getenv("VOLATILE_TEST_TIME_SCALE").flatMap { Double(String(cString: $0)) } ?? 1
        return min(max(value, 1), 20)
    }()

    /// `seconds` stretched by ``timeScale``, as a command-line argument.
    static func scaled(_ seconds: Double) -> String { String(seconds * timeScale) }

    /// A timeout stretched by ``timeScale``.
    static func scaled(timeout seconds: Int) -> Duration { .seconds(Double(seconds) * timeScale) }

    /// 512 MiB of objects through a 128 MiB cgroup: the cache runs to the end with every byte of
    /// every access verified, while the same workload keeping its objects in heap arrays is
    /// OOM-killed.
    @Test func cacheSurvivesFourTimesItsLimitWhereHeapArraysAreOOMKilled() async throws {
        let sandbox = try MemoryPressureSandbox()
        let tool = try stressToolPath()
        let workload = ["--working-set-mib", "512", "--threads", "2", "--hot-budget-mib", "16", "--seed", "11"]

        let heap = try await sandbox.run(
            .executable(tool, arguments: workload + ["--seconds", Self.scaled(6), "--store", "heap"]),
            memoryLimit: Self.limit, timeout: Self.scaled(timeout: 30))
        #expect(heap.wasOOMKilled, "the heap baseline must be OOM-killed: \(heap)\n\(heap.standardOutputText)")
        #expect(heap.termination == .signaled(SIGKILL))
        #expect(!heap.standardOutputText.contains("STRESS"))

        let cache = try await sandbox.run(
            .executable(tool, arguments: workload + ["--seconds", Self.scaled(6), "--store", "cache"]),
            memoryLimit: Self.limit, timeout: Self.scaled(timeout: 60))
        let output = StressToolOutput(cache.standardOutputText)
        #expect(!cache.wasOOMKilled, "\(cache)\n\(cache.standardErrorText)")
        #expect(cache.termination == .exited(0), "\(cache)\n\(cache.standardOutputText)\n\(cache.standardErrorText)")
        #expect(StressToolOutput.isExactStressLine(cache.lastOutputLine ?? ""), "\(cache.standardOutputText)")
        #expect(output.number("STRESS", "corrupt") == 0)
        #expect(output.number("STRESS", "errors") == 0)
        // More than the limit was generated, and the kernel really took pages back. (Not "the
        // whole working set": how far the sweep gets in 6 s depends on the machine's load, and
        // that assertion failed in full parallel runs on a shared machine; issue 12.)
        #expect(output.number("STATS", "working_set_mib") == 512)
        #expect(Self.generatedMoreThanTheLimit(output), "\(cache.standardOutputText)")
        #expect(output.number("STATS", "injections") == 0)
        #expect((output.number("STRESS", "drops_detected") ?? 0) > 0, "\(cache.standardOutputText)")
        #expect((output.number("STRESS", "regenerations") ?? 0) > 0)
        // Objects were read again after their first generation (not "more pins than keys",
        // which again asked for a full sweep in 6 s).
        #expect((output.number("STRESS", "pins") ?? 0) > (output.number("STATS", "generations") ?? .max))
        if let peak = cache.peakMemoryBytes {
            #expect(peak <= Self.limit)
        }
        #expect(cache.cleanupFailure == nil)
    }

    /// The tool's own sandbox mode halves the limit from 128 to 64 MiB while the workload runs
    /// (canary detection, so both mechanisms meet real pressure in this suite).
    @Test func halvingTheLimitMidRunKeepsEveryAccessVerified() throws {
        let run = try ToolRun.run(try stressToolPath(), [
            "--memory-limit-mib", "128", "--halve-limit-after-seconds", Self.scaled(2.5), "--seconds", Self.scaled(6),
            "--working-set-mib", "512", "--threads", "2", "--hot-budget-mib", "16", "--strategy", "canary",
            "--seed", "12",
        ])
        let output = StressToolOutput(run.standardOutput)
        let sandbox = try #require(output.fields("SANDBOX"), "\(run.standardOutput)\n\(run.standardError)")
        #expect(run.status == 0, "\(run.standardOutput)\n\(run.standardError)")
        #expect(sandbox["oom"] == "false")
        #expect(sandbox["exit"] == "exited(0)")
        #expect(sandbox["limit_mib"] == "64", "the limit was not halved: \(run.standardError)")
        if sandbox["peak_mib"] != "unknown" {  // cgroup v2 before Linux 5.19 has no memory.peak
            #expect(Int(sandbox["peak_mib"] ?? "") ?? .max <= 128)
        }
        #expect(output.lines.last?.hasPrefix("SANDBOX ") == true)
        let stress = try #require(output.lines.last(where: { $0.hasPrefix("STRESS ") }))
        #expect(StressToolOutput.isExactStressLine(stress))
        #expect(output.number("STRESS", "corrupt") == 0)
        #expect(output.number("STRESS", "errors") == 0)
        #expect(output.fields("STRESS")?["strategy"] == "canary")
        #expect((output.number("STRESS", "drops_detected") ?? 0) > 0)
        #expect((output.number("STRESS", "regenerations") ?? 0) > 0)
        #expect(Self.generatedMoreThanTheLimit(output), "\(run.standardOutput)")
    }

    /// Whether the objects generated (first generations, out of `keys` objects spread over
    /// `working_set_mib`) add up to more than the 128 MiB limit.
    static func generatedMoreThanTheLimit(_ output: StressToolOutput) -> Bool {
        guard let generations = output.number("STATS", "generations"), let keys = output.number("STATS", "keys"),
            let workingSet = output.number("STATS", "working_set_mib"), keys > 0
        else { return false }
        return generations * workingSet / keys > limit >> 20
    }

    /// Under the cgroup limit the kernel signals pressure (cgroup v1 memory.pressure_level or
    /// PSI); the monitor delivers it and the cache sheds its hot set.
    @Test func pressureSignalShedsTheHotSet() async throws {
        let sandbox = try MemoryPressureSandbox()
        let result = try await sandbox.run(
            .executable(try stressToolPath(), arguments: [
                "--seconds", Self.scaled(5), "--working-set-mib", "256", "--threads", "2", "--hot-budget-mib", "64", "--seed", "13",
            ]),
            memoryLimit: Self.limit, timeout: Self.scaled(timeout: 60))
        let output = StressToolOutput(result.standardOutputText)
        #expect(!result.wasOOMKilled, "\(result)\n\(result.standardErrorText)")
        #expect(result.termination == .exited(0), "\(result)\n\(result.standardOutputText)\n\(result.standardErrorText)")
        let events = try #require(output.number("STATS", "pressure_events"), "\(result.standardOutputText)")
        if events < 0 {
            try Test.cancel("no memory-pressure signal under the sandbox: \(result.standardErrorText)")
        }
        #expect(events > 0, "no pressure event under a 128 MiB limit with 256 MiB of objects")
        #expect((output.number("STATS", "sheds") ?? 0) > 0, "\(result.standardOutputText)")
        #expect((output.number("STATS", "shed_mib") ?? 0) > 0)
        #expect((output.number("STATS", "demotions") ?? 0) > 0)
        #expect(output.number("STRESS", "corrupt") == 0)
        #expect(output.number("STRESS", "errors") == 0)
    }
}
