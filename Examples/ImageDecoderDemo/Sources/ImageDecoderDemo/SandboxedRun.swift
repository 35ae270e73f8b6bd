import Glibc
import VolatileCacheTesting

/// A workload run in a child process inside a memory cgroup, as seen from the parent.
struct ChildOutcome: Sendable {
    var cache: CacheKind
    var samples: [WorkloadSample]
    /// The child's output lines other than SAMPLE and RESULT (gallery line, table).
    var otherLines: [String]
    var standardError: String
    /// The sandbox's account; nil when the child ran without one.
    var sandbox: SandboxResult?
    var accesses: Int
    var hits: Int
    var regenerations: Int
    var seconds: Double
    /// Whether the OOM killer ended it.
    var oom: Bool
    /// Whether the child finished its run and printed its RESULT.
    var finished: Bool
    var verificationFailures: Int
    /// The swap mode the run had, and how its neighbour ended (nil without one).
    var swap: SwapMode = .none
    var neighbour: String?

    var accessesPerSecond: Double { seconds > 0 ? Double(accesses) / seconds : 0 }
    /// CPU seconds (user + system) of the workload, from the last sample.
    var cpuSeconds: Double { samples.last?.cpuSeconds ?? 0 }
    /// Seconds spent decoding, from the last sample.
    var decodeSeconds: Double { samples.last?.decodeSeconds ?? 0 }
    /// Accesses per CPU second: less sensitive than wall time to other load on the machine.
    var accessesPerCPUSecond: Double { cpuSeconds > 0 ? Double(samples.last?.accesses ?? 0) / cpuSeconds : 0 }
    var hitRate: Double { accesses > 0 ? Double(hits) / Double(accesses) : 0 }
    /// Cgroup peak when sandboxed, else the child's largest sampled RSS.
    var peakMiB: Double {
        if let peak = sandbox?.peakMemoryBytes { return Double(peak) / 1_048_576 }
        return samples.map(\.residentMiB).max() ?? 0
    }

    /// How it ended, in a few words.
    var ending: String {
        if oom { return "OOM-killed" }
        if finished { return "finished" }
        if sandbox?.timedOut == true { return "timed out" }
        return sandbox.map { "\($0.termination)" } ?? "failed"
    }

    /// The RESULT line with the sandbox's OOM verdict.
    var resultLine: String {
        "RESULT cache=\(cache.rawValue) accesses=\(accesses) hits=\(hits) regenerations=\(regenerations)"
            + " seconds=\(fixed(seconds, 2)) swap=\(swap.rawValue)" + (neighbour.map { " neighbour=\($0)" } ?? "") + " oom=\(oom)"
    }

    /// Reads a child's standard output.
    init(cache: CacheKind, output: String, standardError: String, sandbox: SandboxResult?) {
        self.cache = cache
        self.standardError = standardError
        self.sandbox = sandbox
        samples = []
        otherLines = []
        var result: KeyValueLine?
        var failures = 0
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if let sample = WorkloadSample(line: line) {
                samples.append(sample)
            } else if line.hasPrefix("RESULT ") {
                result = KeyValueLine(line)
            } else if line.hasPrefix("NEIGHBOUR ") {
                neighbour = KeyValueLine(line).string("ended")
                otherLines.append(String(line))
            } else {
                if line.hasPrefix("verify failures"), let count = line.split(separator: " ").last.flatMap({ Int($0) }) {
                    failures = count
                }
                if !line.isEmpty { otherLines.append(String(line)) }
            }
        }
        verificationFailures = failures
        oom = sandbox?.wasOOMKilled ?? false
        if let result, let accesses = result.int("accesses") {
            // The cgroup's OOM count covers the neighbour too: a workload that printed its
            // RESULT was not the one killed.
            if neighbour != nil { oom = false }
            finished = true
            self.accesses = accesses
            hits = result.int("hits") ?? 0
            regenerations = result.int("regenerations") ?? 0
            seconds = result.double("seconds") ?? 0
        } else {
            // Killed before its RESULT: what its last SAMPLE says.
            finished = false
            let last = samples.last
            accesses = last?.accesses ?? 0
            hits = last?.hits ?? 0
            regenerations = last?.regenerations ?? 0
            seconds = last?.seconds ?? 0
        }
    }
}

/// Re-runs this executable in a memory cgroup.
enum SandboxedRun {
    /// Runs `cache` in a child limited to `options.memoryLimitMiB` (or, with `sandbox` nil, in a
    /// child without a limit) and waits for it.
    /// - Parameters:
    ///   - cache: The cache the child runs.
    ///   - options: The parent's options.
    ///   - photos: The resolved photo folder.
    ///   - sandbox: The sandbox, or nil to run the child without one.
    /// - Returns: What the child did.
    /// - Throws: A ``MemoryPressureSandboxError`` when the child cannot be started.
    static func run(cache: CacheKind, options: DemoOptions, photos: String, sandbox: MemoryPressureSandbox?) async throws -> ChildOutcome {
        let executable = try MemoryPressureSandbox.currentExecutablePath()
        var childOptions = options
        if childOptions.progressTTY == nil, isatty(2) == 1, let name = ttyname(2) {
            childOptions.progressTTY = String(cString: name)
        }
        let arguments = childOptions.childArguments(cache: cache, photos: photos)
        let timeout = Duration.seconds(Int(options.seconds.rounded(.up)) + 120)
        // A child killed mid-line (OOM) leaves its progress line on the terminal: erase it.
        defer { if childOptions.progressTTY != nil, isatty(2) == 1 { Output.write("\r\u{1B}[2K", to: 2) } }
        if let sandbox {
            let result = try await sandbox.run(
                .executable(executable, arguments: arguments), memoryLimit: options.memoryLimitMiB << 20, timeout: timeout)
            var outcome = ChildOutcome(cache: cache, output: result.standardOutputText, standardError: result.standardErrorText, sandbox: result)
            outcome.swap = options.swap
            return outcome
        }
        let (output, errors, _) = try runUnconfined(executable, arguments: arguments)
        var outcome = ChildOutcome(cache: cache, output: output, standardError: errors, sandbox: nil)
        outcome.swap = options.swap
        return outcome
    }

    /// Runs a child without a cgroup (no sandbox here), capturing its output.
    private static func runUnconfined(_ path: String, arguments: [String]) throws -> (String, String, Int32) {
        // A temporary file for each stream keeps this simple and deadlock-free.
        var outTemplate = Array("/tmp/image-decoder-demo-out-XXXXXX".utf8CString)
        var errTemplate = Array("/tmp/image-decoder-demo-err-XXXXXX".utf8CString)
        let outFD = mkstemp(&outTemplate), errFD = mkstemp(&errTemplate)
        defer {
            if outFD >= 0 { close(outFD); unlink(outTemplate) }
            if errFD >= 0 { close(errFD); unlink(errTemplate) }
        }
        guard outFD >= 0, errFD >= 0 else { throw DemoError("cannot create a temporary file: \(String(cString: strerror(errno)))") }
        // mkstemp does not set close-on-exec: without it the child (and any child another thread
        // spawns meanwhile) would inherit a second copy of both descriptors.
        _ = fcntl(outFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(errFD, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { Glibc.free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard status == 0 else { throw DemoError("cannot start \(path): \(String(cString: strerror(status)))") }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        func contents(_ fd: Int32) -> String {
            lseek(fd, 0, SEEK_SET)
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                bytes += chunk[..<count]
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return (contents(outFD), contents(errFD), waitStatus)
    }
}

/// An error with a message for the user.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
