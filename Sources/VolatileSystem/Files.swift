// Small text files of procfs and cgroupfs, read and written whole, on top of the wrappers in
// Syscalls.swift. Control files need a single write per value.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Syscall {
    /// Reads up to `capacity` bytes from `fd`.
    package static func read(_ fd: Int32, capacity: Int = 4096) -> Result<[UInt8], Errno> {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let result = buffer.withUnsafeMutableBytes { read(fd, into: $0) }
        return result.map { Array(buffer.prefix($0)) }
    }

    /// Writes all of `text` to `fd` in one `write`.
    package static func write(_ fd: Int32, _ text: String) -> Result<Int, Errno> {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { write(fd, from: $0) }
    }

    /// Reads a small text file (procfs, cgroupfs) completely.
    package static func readText(_ path: String) -> Result<String, Errno> {
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
    package static func writeText(_ path: String, _ text: String) -> Result<Void, Errno> {
        let fd: Int32
        switch open(path, O_WRONLY) {
        case .success(let value): fd = value
        case .failure(let error): return .failure(error)
        }
        defer { close(fd) }
        return write(fd, text).map { _ in () }
    }

    /// Adds one to an eventfd counter (wakes a poller).
    package static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, from: $0) }
    }

    /// Reads and resets an eventfd counter; returns 0 when it was not signalled.
    package static func drainEventFD(_ fd: Int32) -> UInt64 {
        var value: UInt64 = 0
        let result = withUnsafeMutableBytes(of: &value) { read(fd, into: $0) }
        if case .success(8) = result { return value }
        return 0
    }
}
