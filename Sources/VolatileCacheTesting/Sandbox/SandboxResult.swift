/// How a sandboxed child ended, what it used, and what it printed.
public struct SandboxResult: Sendable, Hashable, CustomStringConvertible {
    /// How a process ended.
    public enum Termination: Sendable, Hashable, CustomStringConvertible {
        /// It called `exit` with this status.
        case exited(Int32)
        /// A signal killed it (9 for SIGKILL, which the OOM killer and timeouts send).
        case signaled(Int32)
        /// Something else in this process reaped the child (for example `waitpid(-1)` in a
        /// SIGCHLD handler), so its status is unknown.
        case reapedElsewhere

        /// For example `exited(0)` or `signaled(9)`.
        public var description: String {
            switch self {
            case .exited(let code): "exited(\(code))"
            case .signaled(let signal): "signaled(\(signal))"
            case .reapedElsewhere: "reaped elsewhere"
            }
        }
    }

    /// How the child ended.
    public var termination: Termination
    /// The cgroup's OOM-kill counter at the end (v1 `memory.oom_control`, v2 `memory.events`);
    /// `nil` when the kernel does not report it.
    public var oomKillCount: Int?
    /// Peak memory usage of the cgroup in bytes (v1 `memory.max_usage_in_bytes`, v2
    /// `memory.peak`); `nil` when the kernel does not report it.
    public var peakMemoryBytes: Int?
    /// How many times the usage hit the limit (v1 `memory.failcnt`, v2 `max` in `memory.events`).
    public var limitHitCount: Int?
    /// The memory limit in force when the child ended, in bytes.
    public var finalMemoryLimit: Int?
    /// Time from spawn to reaping.
    public var wallTime: Duration
    /// `true` when the timeout expired and the sandbox killed the child.
    public var timedOut: Bool
    /// Everything the child wrote to standard output.
    public var standardOutput: [UInt8]
    /// Everything the child wrote to standard error.
    public var standardError: [UInt8]
    /// The cgroup folder the child ran in (removed by now unless ``cleanupFailure`` says otherwise).
    public var cgroupPath: String
    /// `nil` when the cgroup folder was removed; otherwise why it could not be.
    public var cleanupFailure: String?

    /// `true` when the OOM killer killed a process in the child's cgroup.
    public var wasOOMKilled: Bool { (oomKillCount ?? 0) > 0 }

    /// Standard output decoded as UTF-8.
    public var standardOutputText: String { String(decoding: standardOutput, as: UTF8.self) }

    /// Standard error decoded as UTF-8.
    public var standardErrorText: String { String(decoding: standardError, as: UTF8.self) }

    /// The last non-empty line of standard output, without its newline (workloads print their
    /// verdict last), or `nil` when there is none.
    public var lastOutputLine: String? {
        standardOutputText.split(separator: "\n", omittingEmptySubsequences: true).last.map(String.init)
    }

    /// One line for test logs: termination, OOM kills, peak, time.
    public var description: String {
        var parts = ["\(termination)"]
        if timedOut { parts.append("timed out") }
        parts.append("oom_kill \(oomKillCount.map(String.init) ?? "?")")
        if let peakMemoryBytes { parts.append("peak \(peakMemoryBytes >> 20) MiB") }
        parts.append("wall \(wallTime)")
        if let cleanupFailure { parts.append("cleanup failed: \(cleanupFailure)") }
        return parts.joined(separator: ", ")
    }
}
