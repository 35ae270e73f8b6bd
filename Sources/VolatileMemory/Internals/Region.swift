import VolatileSystem
import CVolatileShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One large sparse reservation: `mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`,
/// marked `MADV_DONTFORK` and `MADV_NOHUGEPAGE`, shared by many extents.
///
/// Immutable after creation. Its side tables are ordinary (never volatile) memory:
/// - `savedWords`: the canary strategy's saved first word of each page;
/// - `dropBits`: the userfaultfd strategy's bit per page, set (atomically) when a missing
///   fault or a pin's own pre-check finds the page dropped, consumed by the next pin.
/// Each side-table entry belongs to the extent that owns the page, except `dropBits` words,
/// which neighbouring extents share and which are therefore only touched atomically.
final class Region: @unchecked Sendable {  // Immutable; raw side tables follow the rules above.
    let index: Int
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let pageCount: Int
    let pageSize: Int
    let savedWords: UnsafeMutablePointer<UInt64>?
    private let savedWordsBytes: Int
    let dropBits: UnsafeMutablePointer<UInt64>?
    private let dropBitsBytes: Int

    /// Reserves a region. Returns the mapping error so the caller can retry smaller.
    static func reserve(
        index: Int, byteCount: Int, pageSize: Int, canary: Bool, userfaultfd: Bool
    ) -> Result<Region, Errno> {
        let base: UnsafeMutableRawPointer
        switch Syscall.mapAnonymous(byteCount: byteCount, noReserve: true) {
        case .success(let pointer): base = pointer
        case .failure(let error): return .failure(error)
        }
        // Advisory: a child process must never share volatile pages, and huge pages would
        // make MADV_FREE split them unpredictably. Failure of either is harmless.
        _ = Syscall.advise(base, byteCount: byteCount, vc_madv_dontfork())
        _ = Syscall.advise(base, byteCount: byteCount, vc_madv_nohugepage())

        let pageCount = byteCount / pageSize
        var saved: UnsafeMutablePointer<UInt64>? = nil
        let savedBytes = canary ? roundUp(pageCount * 8, to: pageSize) : 0
        if canary {
            switch Syscall.mapAnonymous(byteCount: savedBytes, noReserve: true) {
            case .success(let pointer): saved = pointer.bindMemory(to: UInt64.self, capacity: pageCount)
            case .failure(let error):
                _ = Syscall.unmap(base, byteCount: byteCount)
                return .failure(error)
            }
        }
        var bits: UnsafeMutablePointer<UInt64>? = nil
        let bitsBytes = userfaultfd ? roundUp((pageCount + 63) / 64 * 8, to: pageSize) : 0
        if userfaultfd {
            switch Syscall.mapAnonymous(byteCount: bitsBytes, noReserve: true) {
            case .success(let pointer): bits = pointer.bindMemory(to: UInt64.self, capacity: (pageCount + 63) / 64)
            case .failure(let error):
                _ = Syscall.unmap(base, byteCount: byteCount)
                if let saved { _ = Syscall.unmap(UnsafeMutableRawPointer(saved), byteCount: savedBytes) }
                return .failure(error)
            }
        }
        return .success(
            Region(
                index: index, base: base, byteCount: byteCount, pageSize: pageSize,
                savedWords: saved, savedWordsBytes: savedBytes, dropBits: bits, dropBitsBytes: bitsBytes))
    }

    private init(
        index: Int, base: UnsafeMutableRawPointer, byteCount: Int, pageSize: Int,
        savedWords: UnsafeMutablePointer<UInt64>?, savedWordsBytes: Int,
        dropBits: UnsafeMutablePointer<UInt64>?, dropBitsBytes: Int
    ) {
        self.index = index
        self.base = base
        self.byteCount = byteCount
        self.pageSize = pageSize
        self.pageCount = byteCount / pageSize
        self.savedWords = savedWords
        self.savedWordsBytes = savedWordsBytes
        self.dropBits = dropBits
        self.dropBitsBytes = dropBitsBytes
    }

    deinit {
        _ = Syscall.unmap(base, byteCount: byteCount)
        if let savedWords { _ = Syscall.unmap(UnsafeMutableRawPointer(savedWords), byteCount: savedWordsBytes) }
        if let dropBits { _ = Syscall.unmap(UnsafeMutableRawPointer(dropBits), byteCount: dropBitsBytes) }
    }

    @inline(__always)
    func contains(_ address: UInt) -> Bool {
        let start = UInt(bitPattern: base)
        return address >= start && address < start + UInt(byteCount)
    }

    @inline(__always)
    func address(ofPage page: Int) -> UnsafeMutableRawPointer {
        base + page * pageSize
    }

    /// Marks a page dropped (atomic: the handler thread and pinning threads share words).
    @inline(__always)
    func markDropped(page: Int) {
        guard let dropBits else { return }
        _ = vc_atomic_fetch_or_u64(dropBits + page / 64, UInt64(1) << UInt64(page % 64))
    }

    /// Atomically takes (reads and clears) the drop bits of pages `first..<first+count`,
    /// calling `body` with each set page index relative to `first`, in ascending order.
    func takeDropped(first: Int, count: Int, _ body: (Int) -> Void) {
        guard let dropBits, count > 0 else { return }
        var page = first
        let end = first + count
        while page < end {
            let word = page / 64
            let lowBit = page % 64
            let highBit = min(64, lowBit + (end - page))
            let span = highBit - lowBit
            let mask: UInt64 = (span == 64 ? ~0 : ((UInt64(1) << UInt64(span)) - 1)) << UInt64(lowBit)
            // Plain load first: the common case (nothing dropped) costs no locked instruction.
            if vc_atomic_load_u64(dropBits + word) & mask != 0 {
                var taken = vc_atomic_fetch_and_u64(dropBits + word, ~mask) & mask
                while taken != 0 {
                    let bit = taken.trailingZeroBitCount
                    body(word * 64 + bit - first)
                    taken &= taken - 1
                }
            }
            page = word * 64 + highBit
        }
    }
}

@inline(__always)
func roundUp(_ value: Int, to multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}
