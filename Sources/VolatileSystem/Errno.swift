#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error number reported by the kernel, with a readable name.
///
/// The package's one errno type: every system call wrapper and every public error that comes
/// from the kernel carries an `Errno`, never a raw `Int32`. Modelled on swift-system's `Errno`:
/// a thin wrapper over the raw value with named constants for the codes this package meets.
/// Compare with the constants (`error == .resourceBusy`); ``rawValue`` is the C value.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw C error number.
    public let rawValue: Int32

    /// Creates an error number from its raw C value.
    /// - Parameter rawValue: The C `errno` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Operation not permitted (`EPERM`): for example a full userfaultfd without privilege.
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }
    /// No such file or directory (`ENOENT`): a missing cgroup or procfs file.
    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }
    /// No such process (`ESRCH`).
    public static var noSuchProcess: Errno { Errno(rawValue: ESRCH) }
    /// Interrupted system call (`EINTR`); the wrappers retry it where that is safe.
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    /// Bad file descriptor (`EBADF`).
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }
    /// No child processes (`ECHILD`): the child was reaped elsewhere.
    public static var noChildProcess: Errno { Errno(rawValue: ECHILD) }
    /// Resource temporarily unavailable (`EAGAIN`): try again, or a thread limit was hit.
    public static var tryAgain: Errno { Errno(rawValue: EAGAIN) }
    /// Out of memory (`ENOMEM`).
    public static var noMemory: Errno { Errno(rawValue: ENOMEM) }
    /// Permission denied (`EACCES`): a control file that is not writable.
    public static var permissionDenied: Errno { Errno(rawValue: EACCES) }
    /// Bad address (`EFAULT`); from `MADV_POPULATE_WRITE` it means a page was dropped.
    public static var badAddress: Errno { Errno(rawValue: EFAULT) }
    /// Device or resource busy (`EBUSY`): a cgroup with processes, or a limit below usage.
    public static var resourceBusy: Errno { Errno(rawValue: EBUSY) }
    /// File (here also: page) exists (`EEXIST`).
    public static var exists: Errno { Errno(rawValue: EEXIST) }
    /// Invalid argument (`EINVAL`); also: the kernel does not know the advice.
    public static var invalidArgument: Errno { Errno(rawValue: EINVAL) }
    /// Function not implemented (`ENOSYS`): the kernel lacks the system call.
    public static var noFunction: Errno { Errno(rawValue: ENOSYS) }
    /// Operation not supported (`EOPNOTSUPP`).
    public static var notSupported: Errno { Errno(rawValue: EOPNOTSUPP) }
    /// Connection or wait timed out (`ETIMEDOUT`).
    public static var timedOut: Errno { Errno(rawValue: ETIMEDOUT) }

    /// The current thread's `errno`. Read it right after the failed call.
    @inline(__always)
    package static var current: Errno { Errno(rawValue: errno) }

    /// The C name and message, e.g. `ENOMEM (Cannot allocate memory)`.
    public var description: String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EBADF: "EBADF",
            ECHILD: "ECHILD", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
            EBUSY: "EBUSY", EEXIST: "EEXIST", EINVAL: "EINVAL", ENOSYS: "ENOSYS",
            EOPNOTSUPP: "EOPNOTSUPP", ETIMEDOUT: "ETIMEDOUT",
        ]
        let message = strerror(rawValue).map { String(cString: $0) } ?? "unknown error"
        return "\(names[rawValue] ?? "errno \(rawValue)") (\(message))"
    }
}
