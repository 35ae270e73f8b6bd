import Foundation
import Testing
import VolatileCacheTesting

/// The demo's environments (issue 9): `--swap`, the neighbour burst, and the undoing of what
/// the demo sets up, after a normal end, a SIGTERM, and a SIGKILL (on the next start).
@Suite("image-decoder-demo environments", .serialized)
struct ImageDecoderDemoSwapTests {
    static let tiny = ["--seconds", "0.6", "--gallery-mib", "4"]
    static let markerFolder = getuid() == 0 ? "/run/image-decoder-demo" : "/tmp/image-decoder-demo-\(getuid())"

    static func path() throws -> String {
        try #require(MemoryPressureSandbox.siblingExecutable(named: "image-decoder-demo"), "image-decoder-demo is not built next to the tests")
    }

    static func demo(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let run = try ImageDecoderDemoTests().demo(arguments)
        return (run.status, run.output, run.errors)
    }

    static func result(_ output: String) -> [String: String] {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else { return [:] }
        var values: [String: String] = [:]
        for field in line.split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    static func activeSwaps() -> String {
        (try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? ""
    }

    /// Root, a free zram0, and the sandbox: what `--swap zram` needs (opt-in, see `ZramSwap`).
    static var zramUsable: Bool { ZramSwap.isPossible }

    @Test("a neighbour in the same cgroup allocates, holds, frees, and is named in the RESULT line", .requiresMemoryPressureSandbox)
    func neighbourFinishes() throws {
        let run = try Self.demo(["--cache", "volatile", "--memory-limit-mib", "192", "--neighbour-mib", "32", "--neighbour-at", "0.1", "--neighbour-seconds", "0.2"] + Self.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let result = Self.result(run.output)
        #expect(result["neighbour"] == "finished", "\(run.output)")
        #expect(result["swap"] == "none")
        #expect(result["oom"] == "false")
        #expect(run.output.contains("NEIGHBOUR mib=32 "))
    }

    @Test("an OOM kill of the neighbour is not counted against the workload", .requiresMemoryPressureSandbox)
    func neighbourKilledIsAttributed() throws {
        // 256 MiB cannot fit a 96 MiB cgroup: the OOM killer takes the neighbour (the largest).
        let run = try Self.demo(["--cache", "none", "--memory-limit-mib", "96", "--neighbour-mib", "256", "--neighbour-at", "0.1", "--neighbour-seconds", "0.2"] + Self.tiny)
        let result = Self.result(run.output)
        #expect(result["neighbour"] == "killed", "\(run.output)\n\(run.errors)")
        #expect(result["oom"] == "false")
        #expect(run.output.contains("OOM kills 1"), "\(run.output)")
    }

    @Test("bad --swap and --neighbour values are refused")
    func badArguments() throws {
        let swap = try Self.demo(["--swap", "tape"])
        #expect(swap.status == 2 && swap.errors.contains("--swap must be one of none, zram, file, machine"))
        let neighbour = try Self.demo(["--neighbour-at", "-1"])
        #expect(neighbour.status == 2 && neighbour.errors.contains("--neighbour-at needs"))
        let volatility = try Self.demo(["--volatility", "sometimes"])
        #expect(volatility.status == 2 && volatility.errors.contains("--volatility must be one of automatic, always, never"))
    }

    @Test("--swap zram sets up zram swap for the run and removes it afterwards", .enabled(if: zramUsable, "needs VOLATILE_SWAP_TESTS=1, root, a free /sys/block/zram0 and memory cgroups"))
    func zramIsUndone() throws {
        let run = try Self.demo(["--cache", "volatile", "--memory-limit-mib", "128", "--swap", "zram"] + Self.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let result = Self.result(run.output)
        #expect(result["swap"] == "zram")
        // Inside the cgroup the child saw usable swap (the sandbox left it unlimited).
        #expect(run.output.contains("VOLATILITY policy=automatic swap_usable=true"), "\(run.output)")
        #expect(!Self.activeSwaps().contains("/dev/zram0"))
        let disksize = try String(contentsOfFile: "/sys/block/zram0/disksize", encoding: .utf8)
        #expect(disksize.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test("SIGTERM mid-run removes the swap and the cgroups", .enabled(if: zramUsable, "needs VOLATILE_SWAP_TESTS=1, root, a free /sys/block/zram0 and memory cgroups"))
    func sigtermIsUndone() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.path())
        process.arguments = ["--compare", "--memory-limit-mib", "128", "--swap", "zram", "--seconds", "30", "--gallery-mib", "4", "--svg", "/dev/null"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let marker = Self.markerFolder + "/\(pid)"
        var waited = 0
        while waited < 600 && !(Self.activeSwaps().contains("/dev/zram0") && FileManager.default.fileExists(atPath: marker)) {
            usleep(50_000)
            waited += 1
        }
        #expect(Self.activeSwaps().contains("/dev/zram0"))
        let cgroupLine = try #require(try String(contentsOfFile: marker, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("cgroups ") })
        usleep(1_500_000)  // a child is running now
        kill(pid, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
        #expect(!Self.activeSwaps().contains("/dev/zram0"))
        #expect(!FileManager.default.fileExists(atPath: marker))
        let prefix = String(cgroupLine.dropFirst("cgroups ".count))
        let parent = (prefix as NSString).deletingLastPathComponent, name = (prefix as NSString).lastPathComponent
        let left = try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(name) }
        #expect(left.isEmpty, "cgroups left: \(left)")
    }

    @Test("the next start undoes what a SIGKILLed run left (marker file)")
    func staleStateIsUndone() throws {
        // A pid that is surely dead: a child that has been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        try FileManager.default.createDirectory(atPath: Self.markerFolder, withIntermediateDirectories: true)
        let leftover = NSTemporaryDirectory() + "image-decoder-demo-stale-\(getpid()).swap"
        #expect(FileManager.default.createFile(atPath: leftover, contents: Data(count: 4096)))
        let marker = Self.markerFolder + "/\(dead)"
        try "file \(leftover)\n".write(toFile: marker, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: leftover); try? FileManager.default.removeItem(atPath: marker) }
        let run = try Self.demo(["--compare", "--no-sandbox", "--svg", "/dev/null", "--seconds", "0.2", "--gallery-mib", "4"])
        #expect(run.status == 0, "\(run.errors)")
        // Another demo started by a test running in parallel may have done it first: check
        // what is left, not who removed it.
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}
