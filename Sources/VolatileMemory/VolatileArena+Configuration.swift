extension VolatileArena {
    /// How an arena reserves memory and detects drops.
    public struct Configuration: Hashable, Sendable {
        /// Drop detection to use. Default: ``DropDetectionStrategy/automatic``.
        public var strategy: DropDetectionStrategy
        /// Size of each sparse reservation, rounded up to whole pages. Default: 1 GiB.
        /// Reserving costs address space only (`MAP_NORESERVE`). When the kernel refuses a
        /// reservation (e.g. `vm.overcommit_memory=2`), the arena halves it down to
        /// ``minimumRegionByteCount`` and records why in ``VolatileArena/reservationNotes``.
        public var regionByteCount: Int
        /// The smallest reservation the arena falls back to. Default: 16 MiB.
        public var minimumRegionByteCount: Int = 16 << 20
        /// Upper bound on address space reserved by all regions; `nil` for none. Default: nil.
        public var maximumReservedBytes: Int?
        /// The largest extent; requests above it throw ``VolatileMemoryError/extentTooLarge(requestedBytes:maximumBytes:)``.
        /// Defaults to the region size; a larger value gets a dedicated region when needed.
        public var maximumExtentByteCount: Int? = nil
        /// Test hook: `false` forces the per-page atomic-touch fallback even where the kernel
        /// has `MADV_POPULATE_WRITE`. Default true.
        package var allowsPopulateWrite: Bool = true
        /// Test hook: open userfaultfd in `UFFD_USER_MODE_ONLY` even when full mode is allowed,
        /// to exercise the unprivileged path. Default false.
        package var prefersUserModeOnlyUserfaultfd: Bool = false
        /// Check residency with mincore before re-dirtying a volatile extent, so that pages
        /// already dropped are mapped in one batch instead of one fault each. Default true.
        public var usesResidencyPrecheck: Bool = true
        /// Bytes of freed extents kept for reuse by allocations of the same page count that do
        /// not need zero-filled memory (``VolatileArena/allocate(byteCount:zeroFilled:)`` with
        /// `zeroFilled: false`). Kept extents are volatile (`MADV_FREE`): the kernel may still
        /// take their pages, and reusing one costs a populate instead of a page fault per page.
        /// ``VolatileArena/trimRecycledExtents()`` releases them. Extents larger than a quarter
        /// of the limit are never kept. 0 disables recycling. Default: 32 MiB.
        public var recycledByteLimit: Int = 32 << 20
        /// Of the recycled bytes, how many may stay populated: an extent freed while pinned
        /// is kept as it is (no `MADV_FREE`) while it fits in this budget, so that reusing it
        /// costs no system call at all, where a volatile recycled extent costs an `MADV_FREE`
        /// at the free and a populate at the reuse (about 5 % of a 1 ms regeneration of
        /// 1 MiB). The kernel cannot take these pages without swap;
        /// ``VolatileArena/trimRecycledExtents()`` releases them (`VolatileCache` calls it
        /// on every shed and pressure event). 0 keeps every recycled extent volatile.
        /// Capped by ``recycledByteLimit``. Not used while swap is usable (`VolatileCache`
        /// then re-dirties pages in user mode): lazily freed pages are cheaper to reclaim than
        /// dirty ones that must be swapped. Default: 8 MiB.
        public var warmRecycledByteLimit: Int = 8 << 20
        /// Debug aid: extents that are not pinned are `PROT_NONE`, so a pointer used after its
        /// unpin (or free) faults at once; a SIGSEGV handler prints "access to an unpinned
        /// VolatileCache object" and the address before the process dies. A pin restores
        /// access. Costs an `mprotect` per unpin, pin, allocation and free. Default false
        /// (`VolatileCache`'s configuration turns it on in debug builds).
        public var debugProtectsUnpinned: Bool = false
        /// Test hook: behave as if the kernel refused `userfaultfd(2)` with this error, to
        /// exercise the fallback on machines where it is granted.
        package var simulatedUserfaultfdRefusal: Errno? = nil

        /// Creates a configuration.
        /// - Parameters:
        ///   - strategy: Drop detection to use.
        ///   - regionByteCount: Size of each reservation.
        ///   - maximumReservedBytes: Bound on reserved address space, or nil.
        public init(
            strategy: DropDetectionStrategy = .automatic,
            regionByteCount: Int = 1 << 30,
            maximumReservedBytes: Int? = nil
        ) {
            self.strategy = strategy
            self.regionByteCount = regionByteCount
            self.maximumReservedBytes = maximumReservedBytes
        }

        /// The default configuration.
        public static var `default`: Configuration { Configuration() }
    }
}
