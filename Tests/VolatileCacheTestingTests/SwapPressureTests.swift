import Foundation
import Testing
import VolatileCacheTesting

// Real memory pressure with swap allowed (issue 9): a zram swap device, and a sandbox whose
// cgroup leaves swap unlimited. Non-volatile entries (today's hot set: what `.automatic` will
// keep swappable) must come back from swap byte for byte; volatile ones are dropped by the
// kernel and regenerated.

/// A zram swap device set up for one test and removed after it.
struct ZramSwap {
    static let device = "/dev/zram0", folder = "/sys/block/zram0"

    /// Opt-in (`VOLATILE_SWAP_TESTS=1`): swap is machine-wide, and tests running meanwhile in
    /// other suites (outside a sandbox) would see their ordinary memory swapped out.
    static var isPossible: Bool {
        ProcessInfo.processInfo.environment["VOLATILE_SWAP_TESTS"] == "1" && getuid() == 0 && FileManager.default.fileExists(atPath: folder)
            && !((try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? "").contains(device)
            && MemoryPressureSandbox.availability.isAvailable
    }

    init(mebibytes: Int) throws {
        try Self.write("reset", "1")
        try? Self.write("comp_algorithm", "lz4")
        try Self.write("disksize", "\(mebibytes << 20)")
        try Self.run("mkswap", [Self.device])
        try Self.run("swapon", [Self.device])
    }

    func remove() {
        try? Self.run("swapoff", [Self.device])
        try? Self.write("reset", "1")
    }

    private static func write(_ file: String, _ value: String) throws {
        try value.write(toFile: folder + "/" + file, atomically: false, encoding: .utf8)
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ["/usr/sbin/", "/sbin/"].map { $0 + tool }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments) failed"]) }
    }
}

/// A counter from /proc/vmstat (pswpin, pswpout: pages swapped in and out, machine-wide).
private func vmstat(_ name: String) -> Int {
    let text = (try? String(contentsOfFile: "/proc/vmstat", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Int(line.split(separator: " ")[1]) ?? 0
    }
    return 0
}

// Nested in the serialized demo-environment suite: only one test at a time uses zram0.
extension ImageDecoderDemoSwapTests {
@Suite("swap pressure")
struct SwapPressureTests {
    /// Runs volatile-stress with `store` in a 128 MiB cgroup whose swap is unlimited.
    static func run(store: String) async throws -> (result: SandboxResult, output: StressToolOutput, swappedOut: Int, swappedIn: Int) {
        var sandbox = try MemoryPressureSandbox()
        sandbox.allowsSwap = true
        let swappedInBefore = vmstat("pswpin"), swappedOutBefore = vmstat("pswpout")
        // 320 MiB through 128 MiB. With the cache, a 160 MiB hot set of ordinary memory cannot
        // fit: only swap can hold the rest; the other 160 MiB are volatile.
        let result = try await sandbox.run(
            .executable(try stressToolPath(), arguments: [
                "--seconds", "4", "--working-set-mib", "320", "--threads", "2", "--hot-budget-mib", "160",
                "--no-pressure-monitor", "--seed", "21", "--store", store,
            ]),
            memoryLimit: 128 << 20, timeout: .seconds(90))
        return (result, StressToolOutput(result.standardOutputText), vmstat("pswpout") - swappedOutBefore, vmstat("pswpin") - swappedInBefore)
    }

    @Test("with swap allowed, ordinary memory comes back from swap intact and volatile entries are regenerated",
          .enabled(if: ZramSwap.isPossible, "needs VOLATILE_SWAP_TESTS=1, root, a free /sys/block/zram0 and memory cgroups"))
    func swappedEntriesComeBackIntact() async throws {
        let swap = try ZramSwap(mebibytes: 512)
        defer { swap.remove() }
        // The baseline shows the sandbox really swaps: heap arrays 2.5x the limit survive.
        let heap = try await Self.run(store: "heap")
        #expect(!heap.result.wasOOMKilled, "\(heap.result)\n\(heap.result.standardErrorText)")
        #expect(heap.output.number("STRESS", "corrupt") == 0)
        #expect(heap.swappedOut > 0, "nothing was swapped out")
        #expect(heap.swappedIn > 0, "nothing came back from swap")

        // Measured 2026-12-02 (issue 9): the cache with a hot set beyond the limit is OOM-killed
        // within a second under the same swap (both drop detection strategies), where the heap
        // arrays survive. With the arena's MADV_POPULATE_WRITE turned off (per-page touches in
        // user mode instead) the same run survives: the kernel-mode populate at the cgroup's
        // limit OOM-kills instead of swapping. Until that is fixed, `.automatic` must not keep
        // entries swappable beyond the limit; this records it as a known issue and fails once
        // the run passes.
        let cache = try await Self.run(store: "cache")
        withKnownIssue("VolatileCache's non-volatile memory beyond the cgroup limit is OOM-killed even with swap allowed") {
            #expect(!cache.result.wasOOMKilled, "\(cache.result)\n\(cache.result.standardErrorText)")
            #expect(cache.result.termination == .exited(0), "\(cache.result)")
        }
        if cache.result.termination == .exited(0) {
            // Every access verified byte for byte, swapped in or regenerated.
            #expect(cache.output.number("STRESS", "corrupt") == 0)
            #expect(cache.output.number("STRESS", "errors") == 0)
            #expect(cache.swappedIn > 0, "nothing came back from swap")
            // Whether the kernel also dropped volatile pages varies (none in a run with the
            // populate turned off): regenerations after drops are checked byte for byte above.
        }
        #expect(cache.result.cleanupFailure == nil)
    }
}
}
