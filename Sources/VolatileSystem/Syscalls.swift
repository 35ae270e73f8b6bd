// Every system call of the package is wrapped once, here, and its result converted in one
// helper, `valueOrErrno`. Each wrapper is `@inline(never)` so that nothing runs between the
// call and the read of errno (as swift-nio's System.swift does). Layers above never call libc
// for a system call themselves.
package import CVolatileShim
#if canImport(Glibc)
package import Glibc
#elseif canImport(Musl)
package import Musl
#endif

/// Calls `body` and converts a C result (-1 and errno on failure) to a `Result`, calling it
/// again while it fails with EINTR (unless `retryOnInterrupt` is false).
///
/// Callers are `@inline(never)` wrappers; `body` is the bare call, so errno is read at once.
@inline(__always)
package func valueOrErrno<I: FixedWidthInteger>(
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

/// The package's system calls, one wrapper each.
package enum Syscall {
    // MARK: Memory

    /// `mmap(2)` of private anonymous read-write memory.
    @inline(never)
    package static func mapAnonymous(byteCount: Int, noReserve: Bool) -> Result<UnsafeMutableRawPointer, Errno> {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        if noReserve { flags |= MAP_NORESERVE }
        let pointer = mmap(nil, byteCount, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let pointer, pointer != MAP_FAILED else { return .failure(.current) }
        return .success(pointer)
    }

    /// `munmap(2)`.
    @inline(never)
    package static func unmap(_ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { munmap(address, byteCount) }.map { _ in () }
    }

    /// `madvise(2)` with one of the shim's advice values (`vc_madv_free()`, ...).
    @inline(never)
    package static func advise(_ address: UnsafeMutableRawPointer, byteCount: Int, _ advice: Int32) -> Result<Void, Errno> {
        valueOrErrno { madvise(address, byteCount, advice) }.map { _ in () }
    }

    /// `mprotect(2)` (the debug use-after-unpin trap).
    @inline(never)
    package static func protect(_ address: UnsafeMutableRawPointer, byteCount: Int, _ protection: Int32) -> Result<Void, Errno> {
        valueOrErrno { mprotect(address, byteCount, protection) }.map { _ in () }
    }

    /// The calling thread's CPU affinity mask (`sched_getaffinity(2)`), 1024 CPUs as 16 words.
    @inline(never)
    package static func threadAffinity() -> Result<[UInt64], Errno> {
        var mask = [UInt64](repeating: 0, count: 16)
        return valueOrErrno { mask.withUnsafeMutableBufferPointer { vc_thread_affinity_get($0.baseAddress) } }
            .map { _ in mask }
    }

    /// Sets the calling thread's CPU affinity mask (`sched_setaffinity(2)`), 16 words.
    @inline(never)
    package static func setThreadAffinity(_ mask: [UInt64]) -> Result<Void, Errno> {
        precondition(mask.count == 16, "a 1024-CPU mask is 16 words")
        return valueOrErrno { mask.withUnsafeBufferPointer { vc_thread_affinity_set($0.baseAddress) } }.map { _ in () }
    }

    /// `munlock(2)`.
    @inline(never)
    package static func unlock(_ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { munlock(address, byteCount) }.map { _ in () }
    }

    /// mincore(2): one byte per page, bit 0 set when resident.
    @inline(never)
    package static func residency(
        _ address: UnsafeMutableRawPointer, byteCount: Int, into vector: UnsafeMutablePointer<UInt8>
    ) -> Result<Void, Errno> {
        valueOrErrno { mincore(address, byteCount, vector) }.map { _ in () }
    }

    // MARK: userfaultfd

    /// `userfaultfd(2)`; not retried on EINTR (it does not sleep).
    @inline(never)
    package static func userfaultfd(flags: Int32) -> Result<Int32, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_userfaultfd(flags) }
    }

    /// The UFFDIO_API handshake; returns the granted features and ioctls.
    @inline(never)
    package static func uffdAPI(_ fd: Int32, features: UInt64) -> Result<(features: UInt64, ioctls: UInt64), Errno> {
        var granted: UInt64 = 0
        var ioctls: UInt64 = 0
        return valueOrErrno { vc_uffd_api(fd, features, &granted, &ioctls) }.map { _ in (granted, ioctls) }
    }

    /// UFFDIO_REGISTER in MISSING mode; returns the ioctls available on the range.
    @inline(never)
    package static func uffdRegisterMissing(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<UInt64, Errno> {
        var ioctls: UInt64 = 0
        return valueOrErrno { vc_uffd_register_missing(fd, address, UInt64(byteCount), &ioctls) }.map { _ in ioctls }
    }

    /// UFFDIO_UNREGISTER.
    @inline(never)
    package static func uffdUnregister(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { vc_uffd_unregister(fd, address, UInt64(byteCount)) }.map { _ in () }
    }

    /// A failed UFFDIO_ZEROPAGE: the error and how many bytes were mapped before it stopped.
    package struct ZeroPageFailure: Error {
        /// Why it stopped.
        package var errno: Errno
        /// Bytes mapped from the start of the range before it stopped.
        package var mapped: Int
    }

    /// UFFDIO_ZEROPAGE; on failure also returns how many bytes were mapped before it stopped.
    /// EINTR is retried only when nothing was mapped (otherwise the caller advances).
    @inline(never)
    package static func uffdZeroPage(
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

    /// UFFDIO_WAKE.
    @inline(never)
    package static func uffdWake(_ fd: Int32, _ address: UnsafeMutableRawPointer, byteCount: Int) -> Result<Void, Errno> {
        valueOrErrno { vc_uffd_wake(fd, address, UInt64(byteCount)) }.map { _ in () }
    }

    // MARK: Descriptors

    /// `open(2)` with `flags`; `O_CLOEXEC` is always added.
    @inline(never)
    package static func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> {
        valueOrErrno { Glibc.open(path, flags | O_CLOEXEC) }
    }

    /// Closes a descriptor this package owns. EBADF is a broken invariant of the caller (a
    /// double close could close someone else's descriptor) and traps; EINTR is not retried, as
    /// on Linux the descriptor is gone either way.
    @inline(never)
    package static func close(_ fd: Int32) {
        if Glibc.close(fd) != 0 && errno == EBADF {
            preconditionFailure("close(\(fd)): descriptor was not open")
        }
    }

    /// `read(2)` into `buffer`; returns the byte count (0 at end of file).
    @inline(never)
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        valueOrErrno { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// `write(2)` from `buffer`; returns the byte count written.
    @inline(never)
    package static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
        valueOrErrno { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    /// `poll(2)` over `fds`, retrying on EINTR (the timeout restarts; callers loop anyway).
    @inline(never)
    package static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) -> Result<Int32, Errno> {
        let count = nfds_t(fds.count)
        return fds.withUnsafeMutableBufferPointer { buffer in
            valueOrErrno { Glibc.poll(buffer.baseAddress, count, timeoutMilliseconds) }
        }
    }

    /// A non-blocking, close-on-exec eventfd (through the shim: `eventfd(2)` is not in the Glibc
    /// module map).
    @inline(never)
    package static func eventfd() -> Result<Int32, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_eventfd_cloexec_nonblock() }
    }

    /// A close-on-exec pipe (`pipe2(2)`, through the shim); the read end is non-blocking.
    @inline(never)
    package static func pipe() -> Result<(read: Int32, write: Int32), Errno> {
        var fds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &fds) { pair in
            pair.withMemoryRebound(to: Int32.self, capacity: 2) { base in
                valueOrErrno(retryOnInterrupt: false) { vc_pipe2(base, O_CLOEXEC) }
            }
        }
        return result.map { _ in
            _ = fcntl(fds.0, F_SETFL, fcntl(fds.0, F_GETFL) | O_NONBLOCK)
            return (fds.0, fds.1)
        }
    }

    /// `readlink(2)` of a path; returns the target.
    @inline(never)
    package static func readLink(_ path: String) -> Result<String, Errno> {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let capacity = buffer.count - 1
        return valueOrErrno { readlink(path, &buffer, capacity) }.map { count in
            String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Files and folders

    /// `mkdir(2)`.
    @inline(never)
    package static func makeDirectory(_ path: String, permissions: mode_t = 0o755) -> Result<Void, Errno> {
        valueOrErrno { mkdir(path, permissions) }.map { _ in () }
    }

    /// `rmdir(2)`.
    @inline(never)
    package static func removeDirectory(_ path: String) -> Result<Void, Errno> {
        valueOrErrno { rmdir(path) }.map { _ in () }
    }

    /// `stat(2)`: whether `path` is a folder.
    @inline(never)
    package static func isDirectory(_ path: String) -> Result<Bool, Errno> {
        var info = stat()
        return valueOrErrno { stat(path, &info) }.map { _ in info.st_mode & S_IFMT == S_IFDIR }
    }

    /// `access(2)` with `mode` (`F_OK`, `X_OK`, ...): whether the check passes.
    @inline(never)
    package static func isAccessible(_ path: String, _ mode: Int32 = F_OK) -> Bool {
        access(path, mode) == 0
    }

    // MARK: Processes

    /// `kill(2)`.
    @inline(never)
    package static func kill(_ pid: pid_t, _ signal: Int32) -> Result<Void, Errno> {
        valueOrErrno { Glibc.kill(pid, signal) }.map { _ in () }
    }

    /// `waitpid(2)` with `WNOHANG`: the wait status once `pid` has ended, `nil` while it runs.
    @inline(never)
    package static func reap(_ pid: pid_t) -> Result<Int32?, Errno> {
        var status: Int32 = 0
        return valueOrErrno { waitpid(pid, &status, WNOHANG) }.map { $0 == 0 ? nil : status }
    }

    /// `pidfd_open(2)` (Linux 5.3, through the shim): a descriptor that polls readable when
    /// the process ends.
    @inline(never)
    package static func pidfdOpen(_ pid: pid_t) -> Result<Int32, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_pidfd_open(pid, 0) }
    }

    // MARK: Memory barriers

    /// Whether `membarrier(2)` can make every running thread of this process execute a full
    /// memory barrier: the kernel supports the private expedited command (Linux 4.14) and
    /// registering this process for it succeeded.
    @inline(never)
    package static func registerPrivateExpeditedMembarrier() -> Result<Void, Errno> {
        let supported = valueOrErrno(retryOnInterrupt: false) { vc_membarrier(vc_membarrier_query()) }
        switch supported {
        case .failure(let error):
            return .failure(error)
        case .success(let commands):
            let needed = vc_membarrier_private_expedited() | vc_membarrier_register_private_expedited()
            guard commands & needed == needed else { return .failure(.notSupported) }
        }
        return valueOrErrno(retryOnInterrupt: false) { vc_membarrier(vc_membarrier_register_private_expedited()) }.map { _ in }
    }

    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: returns once every thread of this
    /// process that is running has executed a full memory barrier (after
    /// ``registerPrivateExpeditedMembarrier()`` succeeded).
    @inline(never)
    package static func privateExpeditedMembarrier() -> Result<Void, Errno> {
        valueOrErrno(retryOnInterrupt: false) { vc_membarrier(vc_membarrier_private_expedited()) }.map { _ in }
    }
}

/// The system page size, read once.
package let systemPageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
