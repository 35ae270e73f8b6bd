import VolatileSystem
import CVolatileShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One-time checks of what the kernel offers, on a scratch page.
enum KernelProbe {
    struct Findings {
        var populateMethod: PopulateMethod
    }

    static func run(pageSize: Int, allowsPopulateWrite: Bool) throws(VolatileMemoryError) -> Findings {
        let page: UnsafeMutableRawPointer
        switch Syscall.mapAnonymous(byteCount: pageSize, noReserve: false) {
        case .success(let pointer): page = pointer
        case .failure(let error): throw .systemCall("mmap (probe page)", error)
        }
        defer { _ = Syscall.unmap(page, byteCount: pageSize) }
        page.storeBytes(of: 1, as: UInt8.self)

        // No MADV_FREE: refuse outright. MADV_DONTNEED under the same name would throw away
        // every idle object on every unpin, which is not what callers asked for.
        if case .failure(let error) = Syscall.advise(page, byteCount: pageSize, vc_madv_free()) {
            throw .madvFreeUnsupported(error)
        }

        let method: PopulateMethod
        if !allowsPopulateWrite {
            method = .atomicTouch(reason: "MADV_POPULATE_WRITE disabled by configuration")
        } else {
            switch Syscall.advise(page, byteCount: pageSize, vc_madv_populate_write()) {
            case .success:
                method = .populateWrite
            case .failure(let error) where error == .invalidArgument:
                method = .atomicTouch(reason: "kernel lacks MADV_POPULATE_WRITE (EINVAL; needs Linux 5.14)")
            case .failure(let error):
                method = .atomicTouch(reason: "MADV_POPULATE_WRITE failed in the probe with \(error)")
            }
        }
        return Findings(populateMethod: method)
    }
}
