public import VolatileMemory

/// Why a memory-pressure sandbox could not do what was asked.
public enum MemoryPressureSandboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Memory cgroups cannot be created here: not root and no delegation, a read-only cgroup
    /// file system, no memory controller, or no cgroup file system at all. `reason` says which,
    /// with the path and errno. Pressure tests should skip (or fail when
    /// ``PressureTestPolicy/requirePressureTests`` is set).
    case unavailable(reason: String)
    /// Creating, configuring or reading the child's cgroup failed after the sandbox was found
    /// usable (for example a control file write failed).
    case cgroupOperationFailed(path: String, errno: Errno, operation: String)
    /// The kernel refused a new memory limit: on cgroup v1 lowering `memory.limit_in_bytes`
    /// below the usage fails with EBUSY when reclaim cannot free enough (no swap).
    case limitRejected(bytes: Int, errno: Errno)
    /// The executable does not exist or is not executable.
    case executableNotFound(path: String)
    /// `posix_spawn` (or the pipes around it) failed.
    case spawnFailed(errno: Errno, operation: String)
    /// The child could not be placed into its cgroup before running (the launcher's write to
    /// `cgroup.procs` failed); `message` is what the launcher printed.
    case placementFailed(message: String)
    /// The calling test binary's path could not be found (`/proc/self/exe`).
    case currentExecutableUnavailable(errno: Errno)

    /// A sentence that says what failed and what to do.
    public var description: String {
        switch self {
        case .unavailable(let reason):
            "memory cgroups are unavailable: \(reason)"
        case .cgroupOperationFailed(let path, let code, let operation):
            "\(operation) \(path) failed: \(code)"
        case .limitRejected(let bytes, let code):
            "the kernel refused a memory limit of \(bytes) bytes: \(code)"
                + (code == .resourceBusy ? " (cgroup v1 cannot shrink below what it can reclaim; lower it before the child allocates)" : "")
        case .executableNotFound(let path):
            "no executable at \(path)"
        case .spawnFailed(let code, let operation):
            "\(operation) failed: \(code)"
        case .placementFailed(let message):
            "the child could not join its cgroup: \(message)"
        case .currentExecutableUnavailable(let code):
            "cannot resolve /proc/self/exe: \(code)"
        }
    }
}
