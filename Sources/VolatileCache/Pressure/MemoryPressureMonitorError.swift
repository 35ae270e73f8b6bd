public import VolatileMemory

/// Why a ``MemoryPressureMonitor`` could not be started.
public enum MemoryPressureMonitorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An explicitly requested source cannot be used here.
    ///
    /// - `kind`: the source that was asked for.
    /// - `reason`: what failed, with the file and errno; for example that the process is not in a
    ///   cgroup v2 memory cgroup, or that `cgroup.event_control` is not writable.
    case sourceUnavailable(kind: MemoryPressureMonitor.SourceKind, reason: String)
    /// ``MemoryPressureMonitor/Source/automatic`` found no usable source; each rejected source
    /// says why. Use ``MemoryPressureMonitor/Source/simulated`` where no kernel source exists.
    case noSourceAvailable([MemoryPressureMonitor.RejectedSource])
    /// The wake-up eventfd could not be created (the error of `eventfd(2)`).
    case eventFDFailed(Errno)
    /// The monitor thread could not be started (the error of `pthread_create(3)`; `Errno.tryAgain`
    /// at a thread or pids limit).
    case threadStartFailed(Errno)

    /// A sentence that says what failed and what to do.
    public var description: String {
        switch self {
        case .sourceUnavailable(let kind, let reason):
            "memory pressure source \(kind) is unavailable: \(reason)"
        case .noSourceAvailable(let rejected):
            "no memory pressure source is available ("
                + rejected.map { "\($0.kind): \($0.reason)" }.joined(separator: "; ")
                + "); use the simulated source where the kernel offers none"
        case .eventFDFailed(let code):
            "eventfd failed: \(code)"
        case .threadStartFailed(let code):
            "could not start the monitor thread: \(code)"
        }
    }
}
