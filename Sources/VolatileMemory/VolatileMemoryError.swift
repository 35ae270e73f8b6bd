/// Errors of the volatile-memory layer. Each case says what happened and what to do.
public enum VolatileMemoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kernel has no `MADV_FREE` (Linux < 4.5) or refuses it on anonymous memory.
    /// There is no silent fallback: `MADV_DONTNEED` would discard on every unpin.
    case madvFreeUnsupported(Errno)
    /// The kernel refused to reserve address space even at the smallest region size.
    /// With `vm.overcommit_memory=2` lower ``VolatileArena/Configuration/regionByteCount``.
    case reservationFailed(requestedBytes: Int, Errno)
    /// Reserving another region would exceed ``VolatileArena/Configuration/maximumReservedBytes``.
    case reservationLimitReached(limitBytes: Int)
    /// A request for zero bytes.
    case zeroByteCount
    /// A request larger than the largest extent this arena can hold.
    case extentTooLarge(requestedBytes: Int, maximumBytes: Int)
    /// The kernel could not provide memory to pin (re-dirty or populate) an extent.
    /// The extent is left discarded (all pages dropped), not half alive; pin it again later.
    case outOfMemory
    /// `userfaultfd` was asked for explicitly but the kernel refused it (EPERM, ENOSYS,
    /// seccomp, missing features). ``DropDetectionStrategy/automatic`` falls back to canaries.
    case userfaultfdUnavailable(reason: String)
    /// An unexpected error from a system call on memory this arena owns.
    case systemCall(String, Errno)

    /// What happened and what to do, in a sentence.
    public var description: String {
        switch self {
        case .madvFreeUnsupported(let errno): "MADV_FREE is not supported by this kernel (\(errno)); Linux 4.12 or later is required"
        case .reservationFailed(let bytes, let errno): "could not reserve \(bytes) bytes of address space (\(errno)); lower the region size"
        case .reservationLimitReached(let limit): "reserving another region would exceed the reservation limit of \(limit) bytes"
        case .zeroByteCount: "an extent must hold at least one byte"
        case .extentTooLarge(let requested, let maximum): "requested \(requested) bytes, more than the largest extent (\(maximum) bytes)"
        case .outOfMemory: "out of memory while pinning; the extent was discarded and can be pinned again later"
        case .userfaultfdUnavailable(let reason): "userfaultfd is unavailable: \(reason)"
        case .systemCall(let name, let errno): "\(name) failed: \(errno)"
        }
    }
}
