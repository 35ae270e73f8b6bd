import VolatileSystem
import CVolatileShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The debug use-after-unpin trap (``VolatileArena/Configuration/debugProtectsUnpinned``).
//
// Every extent that is not pinned (volatile, discarded, freed or kept for reuse) is
// `PROT_NONE`, so a pointer that escaped a body faults at once instead of reading zeros or
// another object's bytes; the SIGSEGV handler (C shim) names the fault before the process dies.
//
//   unpin:    canary words written → MADV_FREE → PROT_NONE
//   pin:      PROT_READ|WRITE → mincore / UFFDIO_ZEROPAGE / MADV_POPULATE_WRITE or canary CAS
//   allocate: PROT_READ|WRITE → populate          free / recycle: MADV_DONTNEED or MADV_FREE → PROT_NONE
//
// Protection changes split the region's mapping; when the kernel refuses (ENOMEM at
// vm.max_map_count), the region containing the extent is made accessible whole and the trap
// turns itself off for the arena: it is a debugging aid, never a reason for a pin to fail.

/// The arena's debug-protection state (present only when the configuration asks for it).
package final class DebugProtection: Sendable {
    /// False once a protection change failed: nothing new is protected (pins still unprotect).
    let isActive = Atomic<Bool>(true)
    /// Whether the SIGSEGV handler is installed (once per process).
    static let handlerInstalled: Bool = vc_debug_trap_install() == 0

    init() {
        _ = Self.handlerInstalled
    }
}

extension VolatileArena {
    /// Makes an extent that stops being pinned inaccessible.
    func debugProtect(_ token: ExtentToken) {
        guard let debugProtection, debugProtection.isActive.load(ordering: .relaxed) else { return }
        if case .failure = Syscall.protect(token.base, byteCount: token.pageCount * pageSize, PROT_NONE) {
            debugProtection.isActive.store(false, ordering: .relaxed)
        }
    }

    /// Makes an extent accessible again before it is pinned or allocated.
    /// - Returns: Failure only when even the whole region cannot be made accessible.
    func debugUnprotect(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        guard debugProtection != nil else { return .success(()) }
        return debugUnprotect(token.base, pageCount: token.pageCount, region: token.region.takeUnretainedValue())
    }

    /// Makes `pageCount` pages from `base` in `region` accessible; on refusal, the whole
    /// region (no mapping split needed), and the trap is switched off.
    func debugUnprotect(_ base: UnsafeMutableRawPointer, pageCount: Int, region: Region) -> Result<Void, VolatileMemoryError> {
        guard let debugProtection else { return .success(()) }
        let readWrite = PROT_READ | PROT_WRITE
        if case .success = Syscall.protect(base, byteCount: pageCount * pageSize, readWrite) { return .success(()) }
        debugProtection.isActive.store(false, ordering: .relaxed)
        switch Syscall.protect(region.base, byteCount: region.byteCount, readWrite) {
        case .success: return .success(())
        case .failure(let error): return .failure(.systemCall("mprotect", error))
        }
    }

    /// Lets the SIGSEGV handler recognise faults in a new region.
    func debugRegister(_ region: Region) {
        guard debugProtection != nil else { return }
        _ = vc_debug_trap_register(region.base, region.byteCount)
    }

    /// Forgets the arena's regions (before they are unmapped).
    func debugUnregisterRegions() {
        guard debugProtection != nil else { return }
        for region in state.withLock({ $0.regions }) { vc_debug_trap_unregister(region.base) }
    }
}
