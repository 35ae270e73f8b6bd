// Every system call of the memory layer is wrapped once, here, and its result
// converted in one helper. `@inline(never)` keeps anything from running between
// the call and the read of errno (as swift-nio's System.swift does).
import CVolatileShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Converts a C result (-1 and errno on failure) to a `Result`, retrying on EINTR.
@inline(__always)
internal func valueOrErrno<I: FixedWidthInteger>(
    retryOnInterrupt: Bool = true,
    _ body: () -> I
) -> Result<I, Errno> {
    while true {
        let result = body()
        if result == -1 {
            let error = Errno.current
            if retryOnInterrupt && error == .interrupted { continue }
            return .failure(error)
        }
        return .success(result)
    }
}

internal enum Syscall {
    @inline(never)
    static func mapAnonymous(byteCount: Int, noReserve: Bool) -> Result<UnsafeMutableRawPointer, Errno> {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        if noReserve { flags |= MAP_NORESERVE }
        let pointer = mmap(nil, byteCount, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let pointer, pointer != MAP_FAILED else { return .failure(.current) }
        return .success(pointer)
    }

    @inline(never)
    static func unmap(_ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { munmap(address, byteCount) }.map { _ in () }
    }

    @inline(never)
    static func advise(_ address: UnsafeMutableRawPointer, byteCount: Int, _ advice: Int32) -> Result<Void, Errno> {
        valueOrErrno { madvise(address, byteCount, advice) }.map { _ in () }
    }

    /// mprotect(2) (the debug use-after-unpin trap).
    @inline(never)
    static func protect(_ address: UnsafeMutableRawPointer, byteCount: Int, _ protection: Int32) -> Result<Void, Errno> {
        valueOrErrno { mprotect(address, byteCount, protection) }.map { _ in () }
    }

    @inline(never)
    static func unlock(_ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { munlock(address, byteCount) }.map { _ in () }
    }

    /// mincore(2): one byte per page, bit 0 set when resident.
    @inline(never)
    static func residency(
        _ address: UnsafeMutableRawPointer, byteCount: Int, into vector: UnsafeMutablePointer<UInt8>
    ) -> Result<Void, Errno> {
        valueOrErrno { mincore(address, byteCount, vector) }.map { _ in () }
    }

    @inline(never)
    static func userfaultfd(flags: Int32) -> Result<Int32, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_userfaultfd(flags) }
    }

    @inline(never)
    static func uffdAPI(_ fd: Int32, features: UInt64) -> Result<(features: UInt64, ioctls: UInt64), Errno> {
        var granted: UInt64 = 0
        var ioctls: UInt64 = 0
        return valueOrErrno { vc_uffd_api(fd, features, &granted, &ioctls) }.map { _ in (granted, ioctls) }
    }

    @inline(never)
    static func uffdRegisterMissing(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<UInt64, Errno> {
        var ioctls: UInt64 = 0
        return valueOrErrno { vc_uffd_register_missing(fd, address, UInt64(byteCount), &ioctls) }.map { _ in ioctls }
    }

    @inline(never)
    static func uffdUnregister(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { vc_uffd_unregister(fd, address, UInt64(byteCount)) }.map { _ in () }
    }

    /// A failed UFFDIO_ZEROPAGE: the error and how many bytes were mapped before it stopped.
    struct ZeroPageFailure: Error {
        var errno: Errno
        var mapped: Int
    }

    /// UFFDIO_ZEROPAGE; on failure also returns how many bytes were mapped before it stopped.
    @inline(never)
    static func uffdZeroPage(
        _ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int
    ) -> Result<Void, ZeroPageFailure> {
        while true {
            var mapped: Int64 = 0
            if vc_uffd_zeropage(fd, address, UInt64(byteCount), &mapped) == 0 { return .success(()) }
            let error = Errno.current
            if error == .interrupted && mapped <= 0 { continue }
            return .failure(ZeroPageFailure(errno: error, mapped: max(0, Int(mapped))))
        }
    }

    @inline(never)
    static func uffdWake(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { vc_uffd_wake(fd, address, UInt64(byteCount)) }.map { _ in () }
    }

    @inline(never)
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        valueOrErrno { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    @inline(never)
    static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
        valueOrErrno { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    @inline(never)
    static func eventfd() -> Result<Int32, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_eventfd_cloexec_nonblock() }
    }

    @inline(never)
    static func poll(_ fds: UnsafeMutablePointer<pollfd>, count: Int, timeoutMilliseconds: Int32) -> Result<Int32, Errno> {
        valueOrErrno { Glibc.poll(fds, nfds_t(count), timeoutMilliseconds) }
    }

    @inline(never)
    static func close(_ fd: Int32) {
        // EINTR on close must not be retried on Linux: the descriptor is gone either way.
        _ = Glibc.close(fd)
    }
}

/// The system page size, read once.
internal let systemPageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
