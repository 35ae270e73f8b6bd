// The few syscalls the pressure monitor (and the testing module's sandbox, through `package`
// access) needs, wrapped once. Results are converted in `valueOrErrno`, which reads errno right
// after the call and loops on EINTR.

package import Glibc
import CVolatileShim
import VolatileMemory

/// An errno value, described as VolatileMemory's `Errno` is (`ENOENT (No such file or directory)`).
package struct PressureErrno: Error, Sendable, Equatable, CustomStringConvertible {
    package var code: Int32

    package init(_ code: Int32) { self.code = code }

    package var description: String { Errno(rawValue: code).description }
}

/// Thin wrappers over the calls used by the monitor and the sandbox.
package enum PressureSyscalls {
    /// Calls `body` until it does not fail with EINTR and returns its value or the errno it set.
    ///
    /// `@inline(never)` keeps anything from running between the call and the errno read.
    @inline(never)
    package static func valueOrErrno<Value: BinaryInteger>(
        retryOnInterrupt: Bool = true,
        _ body: () -> Value
    ) -> Result<Value, PressureErrno> {
        while true {
            let value = body()
            if value >= 0 { return .success(value) }
            let code = errno
            if retryOnInterrupt && code == EINTR { continue }
            return .failure(PressureErrno(code))
        }
    }

    /// Opens `path` with `flags` (O_CLOEXEC is always added).
    package static func open(_ path: String, _ flags: Int32) -> Result<Int32, PressureErrno> {
        valueOrErrno { Glibc.open(path, flags | O_CLOEXEC) }
    }

    /// Closes a descriptor this library owns; EBADF is a broken invariant of the caller.
    package static func close(_ fd: Int32) {
        // EINTR on close must not be retried on Linux: the descriptor is gone either way.
        if Glibc.close(fd) != 0 && errno == EBADF {
            preconditionFailure("close(\(fd)): descriptor was not open")
        }
    }

    /// Writes all of `text` to `fd` in one `write` (control files need a single write).
    package static func write(_ fd: Int32, _ text: String) -> Result<Int, PressureErrno> {
        var bytes = Array(text.utf8)
        let count = bytes.count
        return bytes.withUnsafeMutableBytes { buffer in
            valueOrErrno { Glibc.write(fd, buffer.baseAddress, count) }
        }
    }

    /// Reads up to `capacity` bytes from `fd`.
    package static func read(_ fd: Int32, capacity: Int = 4096) -> Result<[UInt8], PressureErrno> {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let result = buffer.withUnsafeMutableBytes { raw in
            valueOrErrno { Glibc.read(fd, raw.baseAddress, capacity) }
        }
        return result.map { Array(buffer.prefix($0)) }
    }

    /// Reads a small text file (procfs, cgroupfs) completely.
    package static func readText(_ path: String) -> Result<String, PressureErrno> {
        let fd: Int32
        switch open(path, O_RDONLY) {
        case .success(let value): fd = value
        case .failure(let error): return .failure(error)
        }
        defer { close(fd) }
        var all: [UInt8] = []
        while true {
            switch read(fd, capacity: 65536) {
            case .success(let chunk):
                if chunk.isEmpty { return .success(String(decoding: all, as: UTF8.self)) }
                all += chunk
            case .failure(let error):
                return .failure(error)
            }
        }
    }

    /// Writes `text` to the control file at `path` in a single write.
    package static func writeText(_ path: String, _ text: String) -> Result<Void, PressureErrno> {
        let fd: Int32
        switch open(path, O_WRONLY) {
        case .success(let value): fd = value
        case .failure(let error): return .failure(error)
        }
        defer { close(fd) }
        return write(fd, text).map { _ in () }
    }

    /// `poll(2)` over `fds`, retrying on EINTR (the timeout restarts; callers loop anyway).
    package static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) -> Result<Int32, PressureErrno> {
        let count = nfds_t(fds.count)
        return fds.withUnsafeMutableBufferPointer { buffer in
            valueOrErrno { Glibc.poll(buffer.baseAddress, count, timeoutMilliseconds) }
        }
    }

    /// Creates a non-blocking, close-on-exec eventfd (through the C shim: `eventfd(2)` is not
    /// in the Glibc module map).
    package static func eventfd() -> Result<Int32, PressureErrno> {
        valueOrErrno(retryOnInterrupt: false) { vc_eventfd_cloexec_nonblock() }
    }

    /// Adds one to an eventfd counter (wakes a poller).
    package static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { raw in
            valueOrErrno { Glibc.write(fd, raw.baseAddress, 8) }
        }
    }

    /// Reads and resets an eventfd counter; returns 0 when it was not signalled.
    package static func drainEventFD(_ fd: Int32) -> UInt64 {
        var value: UInt64 = 0
        let result = withUnsafeMutableBytes(of: &value) { raw in
            valueOrErrno { Glibc.read(fd, raw.baseAddress, 8) }
        }
        if case .success(8) = result { return value }
        return 0
    }
}
