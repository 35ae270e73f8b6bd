import Foundation
import Testing
import VolatileCacheTesting

// Real memory pressure with swap allowed (issue 9): a zram swap device, and a sandbox whose
// cgroup leaves swap unlimited. Non-volatile entries (the hot set, and the idle entries
// `.automatic` keeps swappable) must come back from swap byte for byte; volatile ones are
// dropped by the kernel and regenerated.

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
    /// Runs volatile-stress with `store` in a 64 MiB cgroup whose swap is unlimited.
    static func run(store: String) async throws -> (result: SandboxResult, output: StressToolOutput, swappedOut: Int, swappedIn: Int) {
        var sandbox = try MemoryPressureSandbox()
        sandbox.allowsSwap = true
        let swappedInBefore = vmstat("pswpin"), swappedOutBefore = vmstat("pswpout")
        // 160 MiB through 64 MiB: only swap can hold the heap store, and the cache's idle
        // entries beyond its 40 MiB hot set are swappable or volatile. Small enough that keys
        // are accessed again within the run (swap-ins, regenerations). A hot set above the
        // limit (80 MiB) with no pressure monitor was OOM-killed in 2 of 10 runs on
        // 2026-12-02 with `.automatic` and in 2 of 10 with `.always` (the behaviour before
        // issue 9): ordinary memory the cache keeps touching, all on the active list when
        // memcg reclaim looks; that configuration is the pressure monitor's job, not swap's.
        let result = try await sandbox.run(
            .executable(try stressToolPath(), arguments: [
                "--seconds", "6", "--working-set-mib", "160", "--threads", "2", "--hot-budget-mib", "40",
                "--no-pressure-monitor", "--seed", "21", "--store", store,
            ]),
            memoryLimit: 64 << 20, timeout: .seconds(90))
        return (result, StressToolOutput(result.standardOutputText), vmstat("pswpout") - swappedOutBefore, vmstat("pswpin") - swappedInBefore)
    }

    /// /proc/swaps, the zram device's use and the machine's swap totals, for failure messages.
    static func swapState() -> String {
        let swaps = ((try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? "?").split(separator: "\n").dropFirst().joined(separator: "; ")
        let zram = ((try? String(contentsOfFile: ZramSwap.folder + "/mm_stat", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
        let meminfo = ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("Swap") || $0.hasPrefix("MemAvailable") }.joined(separator: ", ")
        return "swaps: [\(swaps)], zram0 mm_stat: [\(zram)], \(meminfo)"
    }

    @Test("with swap allowed, ordinary memory comes back from swap intact and volatile entries are regenerated",
          .enabled(if: ZramSwap.isPossible, "needs VOLATILE_SWAP_TESTS=1, root, a free /sys/block/zram0 and memory cgroups"))
    func swappedEntriesComeBackIntact() async throws {
        var swap = try ZramSwap(mebibytes: 512)
        defer { swap.remove() }
        // The baseline shows the sandbox really swaps: heap arrays 2.5x the limit survive.
        var heap = try await Self.run(store: "heap")
        if heap.result.wasOOMKilled {
            // Seen once, in a CI run on 2026-12-02: the plain heap baseline was killed after
            // 0.8 s (swap absorbed nothing in that window) and the cache run after it at 4.2 s;
            // not reproduced in 5 runs of the same sequence. The machine's swap state is
            // printed, and the pair runs once more on a fresh device; a second kill fails.
            print("swap pressure: the heap baseline was OOM-killed (\(heap.result)); \(Self.swapState()); retrying once")
            swap.remove()
            swap = try ZramSwap(mebibytes: 512)
            heap = try await Self.run(store: "heap")
        }
        #expect(!heap.result.wasOOMKilled, "\(heap.result)\n\(Self.swapState())\n\(heap.result.standardErrorText)")
        #expect(heap.output.number("STRESS", "corrupt") == 0)
        #expect(heap.swappedOut > 0, "nothing was swapped out")
        #expect(heap.swappedIn > 0, "nothing came back from swap")

        // Issue 9's blocker, fixed: the cache was OOM-killed within a second under the same
        // swap, because `MADV_POPULATE_WRITE` (kernel-mode faults with FOLL_TOUCH) left no
        // inactive anonymous page for memcg reclaim; with swap usable the arena now re-dirties
        // in user mode (`VolatileArena.redirtiesInUserMode`). `.automatic`: some idle entries
        // stay swappable (ordinary memory the kernel swaps), the others become volatile
        // (dropped and regenerated). A kill fails the test (10 of 10 direct runs survived).
        let cache = try await Self.run(store: "cache")
        #expect(!cache.result.wasOOMKilled, "\(cache.result)\n\(Self.swapState())\n\(cache.result.standardErrorText)")
        try #require(cache.result.termination == .exited(0), "\(cache.result)\n\(cache.result.standardOutputText)")
        // Every access verified byte for byte, swapped in or regenerated.
        #expect(cache.output.number("STRESS", "corrupt") == 0)
        #expect(cache.output.number("STRESS", "errors") == 0)
        #expect(cache.swappedOut > 0, "nothing was swapped out")
        #expect(cache.swappedIn > 0, "nothing came back from swap")
        // Swappable entries were hit (each swapped back in and checked), volatile ones regenerated.
        #expect((cache.output.number("STATS", "swappable_decisions") ?? 0) > 0, "\(cache.output.lines.suffix(3))")
        #expect((cache.output.number("STATS", "swappable_hits") ?? 0) > 0, "\(cache.output.lines.suffix(3))")
        #expect((cache.output.number("STATS", "volatile_decisions") ?? 0) > 0, "\(cache.output.lines.suffix(3))")
        // Regenerations of keys generated before: their volatile pages were dropped (or the
        // entry evicted) and the content was produced again, verified like every access.
        #expect((cache.output.number("STRESS", "regenerations") ?? 0) > 0, "\(cache.output.lines.suffix(3))")
        #expect(cache.result.cleanupFailure == nil)
    }
}
}
