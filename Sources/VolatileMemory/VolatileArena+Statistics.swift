extension VolatileArena {
    /// A snapshot of an arena's figures. Lazily freed pages still count in the process's RSS
    /// and its cgroup's usage until reclaimed; these figures say what is pinned and what the
    /// kernel may take.
    public struct Statistics: Hashable, Sendable {
        /// Address space reserved by all regions, in bytes.
        public var reservedBytes: Int
        /// Number of regions (sparse reservations).
        public var regionCount: Int
        /// Extents currently allocated (recycled extents excluded).
        public var extentCount: Int
        /// Bytes of pinned extents (whole pages).
        public var pinnedBytes: Int
        /// Bytes of volatile extents (whole pages), resident or not.
        public var volatileBytes: Int
        /// Bytes of extents whose content was discarded by a failed pin.
        public var discardedBytes: Int
        /// Pins that report ``PinReport/fresh``: allocations (recycled ones included), pins
        /// of discarded extents and pins discarding content.
        public var freshPins: Int
        /// Re-pins that found every page intact.
        public var intactPins: Int
        /// Re-pins that found dropped pages.
        public var droppedPins: Int
        /// Dropped pages detected by re-pins, in all.
        public var droppedPagesDetected: Int
        /// Unpins.
        public var unpins: Int
        /// Unpins where the kernel refused `MADV_FREE` (pages stayed resident).
        public var unpinFailures: Int
        /// Pins that failed (the extent was discarded).
        public var pinFailures: Int
        /// Missing faults resolved by the userfaultfd handler thread.
        public var userfaultfdFaultsHandled: Int
        /// Bytes of freed extents kept for reuse (volatile, or warm: see below).
        public var recycledBytes: Int
        /// Of ``recycledBytes``, those kept populated for reuse without a system call
        /// (``VolatileArena/Configuration/warmRecycledByteLimit``).
        public var warmRecycledBytes: Int
        /// Allocations served from recycled extents.
        public var recycledReuses: Int
    }

    /// The arena's figures now.
    /// - Complexity: O(regions + recycled page counts).
    public var statistics: Statistics {
        let faults = userfaultfd?.faultsHandled.load(ordering: .relaxed) ?? 0
        let pageSize = self.pageSize
        return state.withLock { state in
            let counters = state.counters
            return Statistics(
                reservedBytes: state.reservedBytes,
                regionCount: state.regions.count,
                extentCount: state.allocators.reduce(0) { $0 + $1.allocatedExtents }
                    - state.recycled.values.reduce(0) { $0 + $1.count },
                pinnedBytes: counters.pinnedPages * pageSize,
                volatileBytes: counters.volatilePages * pageSize,
                discardedBytes: counters.discardedPages * pageSize,
                freshPins: counters.freshPins,
                intactPins: counters.intactPins,
                droppedPins: counters.droppedPins,
                droppedPagesDetected: counters.droppedPagesDetected,
                unpins: counters.unpins,
                unpinFailures: counters.unpinFailures,
                pinFailures: counters.pinFailures,
                userfaultfdFaultsHandled: faults,
                recycledBytes: state.recycledPages * pageSize,
                warmRecycledBytes: state.warmRecycledPages * pageSize,
                recycledReuses: counters.recycledReuses)
        }
    }

    /// Bytes of volatile extents that are still resident, from mincore (recycled extents
    /// are not counted). A snapshot: the kernel may drop more right after.
    /// - Returns: The resident bytes.
    /// - Complexity: O(volatile pages), about 0.35 µs per MiB.
    public func residentVolatileBytes() -> Int {
        volatileRanges().reduce(0) { $0 + residentPageCount($1.base, pageCount: $1.pageCount) } * pageSize
    }

    /// Resident bytes over every region, allocated or not, from mincore: what the arena
    /// really holds in memory. After every extent is freed (and recycled ones trimmed) it is zero.
    /// - Complexity: O(reserved pages); meant for tests and diagnostics.
    package func residentBytesInRegions() -> Int {
        let regions = state.withLock { $0.regions }
        var resident = 0
        let chunkPages = 1 << 16
        for region in regions {
            var page = 0
            while page < region.pageCount {
                let count = min(chunkPages, region.pageCount - page)
                resident += residentPageCount(region.address(ofPage: page), pageCount: count)
                page += count
            }
        }
        return resident * pageSize
    }

    /// Where an extent's pages are; a snapshot that stays valid address space for the arena's
    /// life (regions are unmapped only in its deinit), whatever becomes of the extent.
    package struct VolatileRange: @unchecked Sendable {  // An address, never dereferenced by its holder.
        var base: UnsafeMutableRawPointer
        var pageCount: Int
    }

    /// The volatile extents now (their ranges may be re-pinned or freed right after; callers
    /// only use them for advice that is harmless on non-volatile pages, or for statistics).
    func volatileRanges() -> [VolatileRange] {
        state.withLock { state in
            state.volatileExtents.map { key, pageCount in
                VolatileRange(base: state.regions[key.region].address(ofPage: key.firstPage), pageCount: pageCount)
            }
        }
    }
}
