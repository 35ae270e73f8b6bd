import CVolatileShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VolatileSystem

/// Owns one userfaultfd and the thread that resolves its missing faults.
///
/// Every region of an arena is registered in MISSING mode. A fault means a page of a
/// region has no page-table entry although something touched it: the page was dropped
/// by reclaim while volatile (or is fresh and was touched before being mapped, which the
/// arena avoids by mapping fresh extents with UFFDIO_ZEROPAGE first). The handler records
/// the page in its region's drop bitmap *before* resolving the fault with UFFDIO_ZEROPAGE,
/// so the pin that caused the fault sees the bit as soon as its populate call returns.
/// A user-mode read of volatile memory (a bug in the caller) is recorded the same way, so
/// the next pin still reports that page as dropped instead of trusting a zero page.
final class UserfaultfdHandler: @unchecked Sendable {  // fd/thread are set once; mutable state is in LockedValue/Atomic.
    let fd: Int32
    let mode: UserfaultfdMode
    private let wakeFD: Int32
    private let regions = LockedValue<[Region]>([])
    private let thread = LockedValue<pthread_t?>(nil)
    /// Missing faults resolved by the handler thread since creation.
    let faultsHandled = Atomic<Int>(0)
    /// The error that stopped the handler thread early (a persistent `poll` or `read` failure
    /// on its descriptor), or `nil` while it runs or after a normal shutdown.
    private let stoppedBy = LockedValue<Errno?>(nil)

    /// Opens a userfaultfd: full mode unless refused (or not wanted), then user-mode only.
    static func open(preferUserModeOnly: Bool, simulatedRefusal: Errno? = nil) -> Result<UserfaultfdHandler, VolatileMemoryError> {
        if let simulatedRefusal {
            return .failure(.userfaultfdUnavailable(
                reason: "full mode refused with \(simulatedRefusal); user-mode-only refused with \(simulatedRefusal)"))
        }
        let baseFlags = O_CLOEXEC | O_NONBLOCK
        var fd: Int32 = -1
        var mode = UserfaultfdMode.full
        var fullError: Errno? = nil
        if !preferUserModeOnly {
            switch Syscall.userfaultfd(flags: baseFlags) {
            case .success(let descriptor): fd = descriptor
            case .failure(let error): fullError = error
            }
        }
        if fd < 0 {
            mode = .userModeOnly
            switch Syscall.userfaultfd(flags: baseFlags | vc_uffd_user_mode_only()) {
            case .success(let descriptor): fd = descriptor
            case .failure(let error):
                let full = fullError.map { "full mode refused with \($0); " } ?? ""
                // Kernels before 5.11 reject the unknown flag with EINVAL: name the missing feature.
                let missing = error == .invalidArgument ? " (the kernel lacks UFFD_USER_MODE_ONLY, Linux 5.11)" : ""
                return .failure(.userfaultfdUnavailable(reason: "\(full)user-mode-only refused with \(error)\(missing)"))
            }
        }
        switch Syscall.uffdAPI(fd, features: 0) {
        case .success: break
        case .failure(let error):
            Syscall.close(fd)
            return .failure(.userfaultfdUnavailable(reason: "UFFDIO_API handshake failed with \(error)"))
        }
        let wake: Int32
        switch Syscall.eventfd() {
        case .success(let descriptor): wake = descriptor
        case .failure(let error):
            Syscall.close(fd)
            return .failure(.userfaultfdUnavailable(reason: "eventfd for the handler thread failed with \(error)"))
        }
        switch start(fd: fd, mode: mode, wakeFD: wake) {
        case .success(let handler):
            return .success(handler)
        case .failure(let error):
            // No thread to stop: just close both descriptors (the arena falls back to canaries).
            Syscall.close(fd)
            Syscall.close(wake)
            return .failure(.userfaultfdUnavailable(reason: "could not start the handler thread: \(error)"))
        }
    }

    /// Starts the handler thread on descriptors that are already open (tests pass descriptors
    /// that fail, to check that the thread stops instead of spinning).
    static func start(fd: Int32, mode: UserfaultfdMode, wakeFD: Int32) -> Result<UserfaultfdHandler, Errno> {
        let handler = UserfaultfdHandler(fd: fd, mode: mode, wakeFD: wakeFD)
        if let error = handler.startThread() { return .failure(error) }
        return .success(handler)
    }

    /// The error that stopped the handler thread before shutdown, if one did.
    var stoppedByError: Errno? { stoppedBy.withLock { $0 } }

    private init(fd: Int32, mode: UserfaultfdMode, wakeFD: Int32) {
        self.fd = fd
        self.mode = mode
        self.wakeFD = wakeFD
    }

    /// Registers a region in MISSING mode; checks that UFFDIO_ZEROPAGE is available on it.
    func register(_ region: Region) -> Result<Void, Errno> {
        switch Syscall.uffdRegisterMissing(fd, region.base, byteCount: region.byteCount) {
        case .success(let ioctls):
            guard ioctls & (UInt64(1) << UInt64(_UFFDIO_ZEROPAGE)) != 0 else {
                _ = Syscall.uffdUnregister(fd, region.base, byteCount: region.byteCount)
                return .failure(.invalidArgument)
            }
            regions.withLock { $0.append(region) }
            return .success(())
        case .failure(let error):
            return .failure(error)
        }
    }

    /// Maps the zero page over `[address, address + byteCount)`, skipping pages that are
    /// already present, and wakes any thread waiting on those pages.
    ///
    /// UFFDIO_ZEROPAGE fails with EEXIST when the *first* page is present; when it maps some
    /// pages and then stops (at a present page, or because the address space was changing)
    /// it fails with EAGAIN and says how far it got. So progress is made as long as `mapped`
    /// grows: only EAGAIN without progress counts towards the give-up bound.
    /// - Returns: ``VolatileMemoryError/outOfMemory`` for ENOMEM, `.systemCall` otherwise.
    /// - Complexity: One ioctl per run of absent pages.
    /// - Parameter present: Called with the address of each page found present (`EEXIST`),
    ///   which keeps its content.
    func mapZeroPages(
        _ address: UnsafeMutableRawPointer, byteCount: Int, pageSize: Int,
        present: (UnsafeMutableRawPointer) -> Void = { _ in }
    ) -> Result<Void, VolatileMemoryError> {
        var cursor = address
        var remaining = byteCount
        var fruitlessAttempts = 0
        while remaining > 0 {
            switch Syscall.uffdZeroPage(fd, cursor, byteCount: remaining) {
            case .success:
                return .success(())
            case .failure(let failure):
                let (error, mapped) = (failure.errno, failure.mapped)
                if error == .exists {
                    // The page at `mapped` (0 in practice) is present: step over it.
                    present(cursor + mapped)
                    cursor += mapped + pageSize
                    remaining -= mapped + pageSize
                } else if error == .tryAgain {
                    cursor += mapped
                    remaining -= mapped
                    if mapped > 0 {
                        fruitlessAttempts = 0
                    } else {
                        fruitlessAttempts += 1
                        if fruitlessAttempts > 1000 { return .failure(.systemCall("ioctl(UFFDIO_ZEROPAGE)", error)) }
                        sched_yield()  // An mmap change is in progress elsewhere.
                    }
                } else {
                    return .failure(error == .noMemory ? .outOfMemory : .systemCall("ioctl(UFFDIO_ZEROPAGE)", error))
                }
            }
        }
        return .success(())
    }

    private func startThread() -> Errno? {
        switch VolatileSystem.startThread({ self.run() }) {
        case .success(let thread):
            self.thread.withLock { $0 = thread }
            return nil
        case .failure(let error):
            return error
        }
    }

    private func run() {
        let messageSize = vc_uffd_msg_size()
        let capacity = 64
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize * capacity, alignment: 8)
        defer { buffer.deallocate() }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            // EINTR is retried inside the wrapper; any other poll failure would repeat forever.
            if case .failure(let error) = Syscall.poll(&fds, timeoutMilliseconds: -1) {
                return stop(because: error)
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else {
                if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return }
                continue
            }
            switch Syscall.read(fd, into: buffer) {
            case .success(let count):
                var offset = 0
                while offset + messageSize <= count {
                    var address: UInt64 = 0
                    if vc_uffd_msg_pagefault(buffer.baseAddress! + offset, &address) == 1 {
                        resolve(address: UInt(address))
                    }
                    offset += messageSize
                }
            case .failure(let error) where error == .tryAgain:
                continue  // Another wake-up raced us.
            case .failure(let error):
                return stop(because: error)  // Persistent (EBADF, EINVAL, ...): do not spin.
            }
        }
    }

    /// Ends the handler thread after an error it cannot get past. Faults on the registered
    /// ranges then wait until the arena's deinit closes the descriptor, which resolves them.
    private func stop(because error: Errno) {
        stoppedBy.withLock { $0 = error }
    }

    private func resolve(address: UInt) {
        let region = regions.withLock { list in list.first { $0.contains(address) } }
        guard let region else { return }
        let page = Int(address - UInt(bitPattern: region.base)) / region.pageSize
        region.markDropped(page: page)  // Before resolving: the pin must see it when it resumes.
        let pageAddress = region.address(ofPage: page)
        var attempts = 0
        while true {
            switch Syscall.uffdZeroPage(fd, pageAddress, byteCount: region.pageSize) {
            case .success:
                faultsHandled.add(1, ordering: .relaxed)
                return
            case .failure(let failure):
                let error = failure.errno
                if error == .exists {
                    // Someone mapped it meanwhile; the faulting thread may still sleep.
                    _ = Syscall.uffdWake(fd, pageAddress, byteCount: region.pageSize)
                    faultsHandled.add(1, ordering: .relaxed)
                    return
                }
                attempts += 1
                if attempts > 100 {
                    // Cannot map it (ENOMEM for a page table?): wake the thread so the fault is
                    // retried and queued again rather than hanging forever.
                    _ = Syscall.uffdWake(fd, pageAddress, byteCount: region.pageSize)
                    return
                }
                usleep(100)
            }
        }
    }

    /// Stops the handler thread and closes the descriptors. Called once, by the arena's deinit.
    func shutdown() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Syscall.write(wakeFD, from: $0) }
        if let thread = self.thread.withLock({ $0 }) {
            pthread_join(thread, nil)
        }
        Syscall.close(fd)  // Unregisters every range.
        Syscall.close(wakeFD)
    }
}
