#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error number reported by the kernel, with a readable name.
///
/// Modelled on swift-system's `Errno`: a thin wrapper over the raw value with
/// named constants for the codes this library acts on.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw C error number.
    public let rawValue: Int32

    /// Creates an error number from its raw C value.
    /// - Parameter rawValue: The C `errno` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Operation not permitted.
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }
    /// Interrupted system call (retried internally).
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    /// Out of memory.
    public static var noMemory: Errno { Errno(rawValue: ENOMEM) }
    /// Bad address.
    public static var badAddress: Errno { Errno(rawValue: EFAULT) }
    /// Invalid argument (also: the kernel does not know the advice).
    public static var invalidArgument: Errno { Errno(rawValue: EINVAL) }
    /// Function not implemented.
    public static var noFunction: Errno { Errno(rawValue: ENOSYS) }
    /// Resource temporarily unavailable.
    public static var tryAgain: Errno { Errno(rawValue: EAGAIN) }
    /// File (here: page) exists.
    public static var exists: Errno { Errno(rawValue: EEXIST) }
    /// Bad file descriptor.
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }

    /// The current thread's `errno`.
    @inline(__always)
    static var current: Errno { Errno(rawValue: errno) }

    /// The C name and message, e.g. `ENOMEM (Cannot allocate memory)`.
    public var description: String {
        let names: [Int32: String] = [
            EPERM: "EPERM", EINTR: "EINTR", ENOMEM: "ENOMEM", EFAULT: "EFAULT", EINVAL: "EINVAL",
            ENOSYS: "ENOSYS", EAGAIN: "EAGAIN", EEXIST: "EEXIST", EBADF: "EBADF", EACCES: "EACCES",
            ENOENT: "ENOENT", EBUSY: "EBUSY", ESRCH: "ESRCH", EOPNOTSUPP: "EOPNOTSUPP",
        ]
        let message = strerror(rawValue).map { String(cString: $0) } ?? "unknown error"
        return "\(names[rawValue] ?? "errno \(rawValue)") (\(message))"
    }
}
