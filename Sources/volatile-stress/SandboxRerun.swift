// --memory-limit-mib: the tool re-runs itself as a child in a memory cgroup with that limit,
// optionally halves the limit mid-run, and reports the child's final lines and the sandbox's
// verdict:
//
//   STRESS pins=... (the child's, when it lived to print it)
//   SANDBOX oom=<bool> peak_mib=<n> exit=<termination> limit_mib=<final limit> wall_ms=<n>

import Glibc
import VolatileCacheTesting

/// The parent side of a sandboxed run.
struct SandboxRerun {
    let options: StressOptions

    /// Runs the child and prints its output and the SANDBOX line.
    ///
    /// - Returns: 0 when the child exited 0, was not OOM-killed, and the limit was halved if
    ///   asked; 1 otherwise; 69 when the sandbox is unavailable.
    func run() async -> Int32 {
        guard let limitMiB = options.memoryLimitMiB else { return 64 }
        let sandbox: MemoryPressureSandbox
        let executable: String
        do {
            sandbox = try MemoryPressureSandbox()
            executable = try MemoryPressureSandbox.currentExecutablePath()
        } catch {
            printError("volatile-stress: --memory-limit-mib needs the memory-pressure sandbox: \(error)")
            return 69  // EX_UNAVAILABLE
        }
        let child: SandboxedProcess
        do {
            // Generous: a debug build is slow to start and to tear down hundreds of MiB.
            let timeout = Duration.milliseconds(Int64(options.seconds * 1000)) + .seconds(60)
            child = try sandbox.start(
                .executable(executable, arguments: options.childArguments),
                memoryLimit: limitMiB << 20, timeout: timeout)
        } catch {
            printError("volatile-stress: cannot start the sandboxed child: \(error)")
            return 1
        }

        let progress = ProgressReporter(forced: options.progress)
        let halved = await supervise(child, limitMiB: limitMiB, progress: progress)

        let result: SandboxResult
        do {
            result = try await child.result()
        } catch {
            printError("volatile-stress: the sandboxed child failed: \(error)")
            return 1
        }
        if !result.standardError.isEmpty {
            printError(result.standardErrorText)
        }
        for line in result.standardOutputText.split(separator: "\n") {
            printLine(String(line))
        }
        printLine(Self.sandboxLine(result))
        if result.wasOOMKilled || result.timedOut || result.termination != .exited(0) { return 1 }
        if options.halveLimitAfterSeconds != nil && !halved { return 1 }
        return 0
    }

    /// `SANDBOX oom=<bool> peak_mib=<n> exit=<termination> limit_mib=<n> wall_ms=<n>`
    static func sandboxLine(_ result: SandboxResult) -> String {
        let wall = result.wallTime.components
        return "SANDBOX oom=\(result.wasOOMKilled) peak_mib=\(result.peakMemoryBytes.map { String($0 >> 20) } ?? "unknown")"
            + " exit=\(result.timedOut ? "timeout" : result.termination.description)"
            + " limit_mib=\(result.finalMemoryLimit.map { String($0 >> 20) } ?? "unknown")"
            + " wall_ms=\(wall.seconds * 1000 + wall.attoseconds / 1_000_000_000_000_000)"
    }

    /// Prints progress and halves the limit when asked, until the child ends.
    ///
    /// - Returns: Whether the limit was halved.
    private func supervise(_ child: SandboxedProcess, limitMiB: Int, progress: ProgressReporter) async -> Bool {
        let started = ContinuousClock.now
        var halveAt = options.halveLimitAfterSeconds.map { started + .milliseconds(Int64($0 * 1000)) }
        var halved = false
        var nextReport = started + .seconds(1)
        // memory.usage fails once the child is gone and its cgroup removed: that ends the loop.
        while let usage = try? child.memoryUsage() {
            let now = ContinuousClock.now
            if let due = halveAt, now >= due {
                halved = halve(child, to: (limitMiB << 20) / 2)
                halveAt = nil
            }
            if now >= nextReport {
                let limit = (try? child.memoryLimit()).map { String($0 >> 20) } ?? "?"
                progress.report("sandbox usage_mib=\(usage >> 20) limit_mib=\(limit)")
                nextReport = nextReport + .seconds(1)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return halved
    }

    /// On cgroup v1 lowering the limit fails with EBUSY while reclaim cannot get the usage
    /// below it; volatile pages are reclaimable, so retry for a few seconds before giving up.
    private func halve(_ child: SandboxedProcess, to bytes: Int) -> Bool {
        let giveUp = ContinuousClock.now + .seconds(5)
        var lastError: MemoryPressureSandboxError?
        while ContinuousClock.now < giveUp {
            do {
                try child.setMemoryLimit(bytes)
                printError("volatile-stress: memory limit halved to \(bytes >> 20) MiB")
                return true
            } catch {
                lastError = error
                if case .limitRejected = error {
                    var request = timespec(tv_sec: 0, tv_nsec: 100_000_000)
                    _ = nanosleep(&request, nil)
                    continue
                }
                break
            }
        }
        printError("volatile-stress: could not halve the memory limit: \(lastError.map { "\($0)" } ?? "timed out")")
        return false
    }
}
