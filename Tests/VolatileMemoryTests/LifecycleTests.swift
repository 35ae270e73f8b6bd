import Testing
@testable import VolatileMemory

@Suite("Extent lifecycle and drop detection")
struct LifecycleTests {
    @Test("A fresh extent is pinned, zero-filled and reports fresh", arguments: Variant.allCases)
    func freshExtent(variant: Variant) throws {
        let arena = try variant.makeArena()
        var extent = try arena.allocate(byteCount: 5 * arena.pageSize + 17)
        #expect(extent.report == .fresh)
        #expect(extent.pageCount == 6)
        #expect(extent.byteCount == 5 * arena.pageSize + 17)
        let allZero = extent.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }
        #expect(allZero)
        extent.withUnsafeMutableBytes { fill($0, seed: 1) }
        #expect(extent.residentPageCount() == 6)
        #expect(arena.statistics.pinnedBytes == 6 * arena.pageSize)
    }

    @Test("Unpin then pin with no pressure finds the extent intact, byte for byte", arguments: Variant.allCases)
    func intactRoundTrip(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 16 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 7) }
        let volatile = pinned.unpin()
        #expect(arena.statistics.volatileBytes == 16 * arena.pageSize)
        #expect(arena.statistics.pinnedBytes == 0)
        let repinned = try volatile.pin().get()
        #expect(repinned.report == .intact)
        #expect(repinned.withUnsafeBytes { firstMismatch($0, seed: 7) } == nil)
        #expect(arena.statistics.intactPins == 1)
    }

    @Test("Exactly the dropped pages are reported, the others are intact", arguments: Variant.allCases)
    func exactDetection(variant: Variant) throws {
        let arena = try variant.makeArena()
        let pageCount = 64
        let wordsPerPage = arena.pageSize / 8
        for (round, droppedPages) in [[0], [63], [1, 2, 3, 40], [5, 7, 9, 11, 13], Array(0..<64)].enumerated() {
            var pinned = try arena.allocate(byteCount: pageCount * arena.pageSize)
            let seed = UInt64(100 + round)
            pinned.withUnsafeMutableBytes { fill($0, seed: seed) }
            let volatile = pinned.unpin()
            try volatile.dropPages(droppedPages)
            #expect(volatile.residentPageCount() == pageCount - droppedPages.count, "MADV_PAGEOUT did not drop them")
            var repinned = try volatile.pin().get()
            #expect(repinned.report == .dropped(pages: droppedPages))
            // Dropped pages read as zeros; every other page is exactly as written.
            repinned.withUnsafeBytes { bytes in
                let words = bytes.bindMemory(to: UInt64.self)
                for page in 0..<pageCount {
                    let range = page * wordsPerPage..<(page + 1) * wordsPerPage
                    if droppedPages.contains(page) {
                        #expect(words[range].allSatisfy { $0 == 0 }, "dropped page \(page) not zero")
                    } else {
                        #expect(range.allSatisfy { words[$0] == expectedWord(seed: seed, index: $0) }, "page \(page) corrupted")
                    }
                }
            }
            // Regenerate the dropped pages, cycle again with no drop: intact.
            repinned.withUnsafeMutableBytes { fill($0, seed: seed) }
            let again = try repinned.unpin().pin().get()
            #expect(again.report == .intact)
            #expect(again.withUnsafeBytes { firstMismatch($0, seed: seed) } == nil)
        }
        let statistics = arena.statistics
        #expect(statistics.droppedPins == 5)
        #expect(statistics.droppedPagesDetected == 1 + 1 + 4 + 5 + 64)
    }

    @Test("A re-pinned extent is dirty again: reclaim cannot take it", arguments: Variant.allCases)
    func repinnedPagesSurviveReclaim(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 32 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 99) }
        let repinned = try pinned.unpin().pin().get()
        #expect(repinned.report == .intact)
        // MADV_PAGEOUT drops clean lazily-freed pages at once. If the pin had not re-dirtied
        // every page (a populate or touch that only read), this would drop them while pinned.
        _ = madvise(repinned.baseAddress, 32 * arena.pageSize, 21 /* MADV_PAGEOUT */)
        #expect(repinned.residentPageCount() == 32)
        #expect(repinned.withUnsafeBytes { firstMismatch($0, seed: 99) } == nil)
    }

    @Test("Drop injection over all volatile extents and a seeded fraction", arguments: [Variant.userfaultfdFull, .canary])
    func dropInjection(variant: Variant) throws {
        let arena = try variant.makeArena()
        var volatiles: [Slot<VolatileExtent>] = []
        for index in 0..<8 {
            var pinned = try arena.allocate(byteCount: 32 * arena.pageSize)
            pinned.withUnsafeMutableBytes { fill($0, seed: UInt64(index)) }
            volatiles.append(Slot(pinned.unpin()))
        }
        #expect(arena.residentVolatileBytes() == 8 * 32 * arena.pageSize)
        let asked = try arena.dropVolatilePages(fraction: 0.25, seed: 42)
        #expect(asked > 0 && asked < 8 * 32)
        #expect(arena.residentVolatileBytes() == (8 * 32 - asked) * arena.pageSize)
        var detected = 0
        for slot in volatiles {
            let pinned = try slot.value.take()!.pin().get()
            detected += pinned.report.droppedPages.count
        }
        #expect(detected == asked)
        // Same seed, same choice.
        var again: [Slot<VolatileExtent>] = []
        for index in 0..<8 {
            var pinned = try arena.allocate(byteCount: 32 * arena.pageSize)
            pinned.withUnsafeMutableBytes { fill($0, seed: UInt64(index)) }
            again.append(Slot(pinned.unpin()))
        }
        #expect(try arena.dropVolatilePages(fraction: 0.25, seed: 42) == asked)
        #expect(try arena.dropAllVolatilePages() == 8 * 32)
        #expect(arena.residentVolatileBytes() == 0)
    }

    @Test("Bad requests are typed errors")
    func badRequests() throws {
        let arena = try VolatileArena(configuration: .init(regionByteCount: 16 << 20))
        #expect(throws: VolatileMemoryError.zeroByteCount) { _ = try arena.allocate(byteCount: 0) }
        #expect(throws: VolatileMemoryError.zeroByteCount) { _ = try arena.allocate(byteCount: -5) }
        #expect(throws: VolatileMemoryError.extentTooLarge(requestedBytes: (16 << 20) + 1, maximumBytes: 16 << 20)) {
            _ = try arena.allocate(byteCount: (16 << 20) + 1)
        }
        var limited = VolatileArena.Configuration(regionByteCount: 16 << 20, maximumReservedBytes: 32 << 20)
        limited.minimumRegionByteCount = 16 << 20
        let small = try VolatileArena(configuration: limited)
        let first = try small.allocate(byteCount: 16 << 20)
        let second = try small.allocate(byteCount: 16 << 20)
        #expect(throws: VolatileMemoryError.reservationLimitReached(limitBytes: 32 << 20)) {
            _ = try small.allocate(byteCount: 4096)
        }
        _ = consume first
        _ = consume second
        #expect(small.statistics.regionCount == 2)
        _ = try small.allocate(byteCount: 4096)
    }

    @Test("Freed extents give their pages back and leave nothing allocated", arguments: [Variant.userfaultfdFull, .canary])
    func noLeaks(variant: Variant) throws {
        let arena = try variant.makeArena()
        do {
            var pinnedList: [Slot<PinnedExtent>] = []
            var volatileList: [Slot<VolatileExtent>] = []
            for index in 0..<20 {
                var pinned = try arena.allocate(byteCount: (index + 1) * 3000)
                pinned.withUnsafeMutableBytes { fill($0, seed: UInt64(index)) }
                if index % 2 == 0 { volatileList.append(Slot(pinned.unpin())) } else { pinnedList.append(Slot(pinned)) }
            }
            #expect(arena.statistics.extentCount == 20)
            #expect(arena.residentBytesInRegions() >= (1...20).reduce(0) { $0 + $1 * 3000 })
        }
        // Freed extents are kept volatile for reuse (up to recycledByteLimit) until trimmed.
        #expect(arena.statistics.recycledBytes > 0)
        #expect(arena.trimRecycledExtents() > 0)
        let statistics = arena.statistics
        #expect(statistics.recycledBytes == 0)
        #expect(arena.residentBytesInRegions() == 0, "freed extents must give their pages back")
        #expect(statistics.extentCount == 0)
        #expect(statistics.pinnedBytes == 0)
        #expect(statistics.volatileBytes == 0)
        #expect(arena.allocatorShape().allSatisfy { $0.freeBlocks == 1 })
        arena.checkInvariants()
    }

    @Test("ENOMEM while pinning: typed error, extent discarded not half alive, later pins work",
          .enabled(if: VolatileArena.internalChecksEnabled, "the ENOMEM hook needs -DVOLATILE_INTERNAL_CHECKS"),
          arguments: [Variant.userfaultfdFull, .userfaultfdUserModeOnly, .canary])
    func outOfMemoryOnPin(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 8 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 5) }
        let volatile = pinned.unpin()
        try volatile.dropPages([2])  // So the canary path also has to populate.
        arena.injectOutOfMemory()
        var discarded: VolatileExtent
        let outcome = volatile.pin()
        switch consume outcome {
        case .pinned:
            Issue.record("pin succeeded despite ENOMEM")
            return
        case .failed(let extent, let error):
            #expect(error == .outOfMemory)
            discarded = extent
        }
        #expect(discarded.residentPageCount() == 0, "a failed pin must release its pages")
        #expect(arena.statistics.discardedBytes == 8 * arena.pageSize)
        #expect(arena.statistics.pinFailures == 1)
        var again = try discarded.pin().get()
        #expect(again.report == .fresh)
        #expect(again.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        again.withUnsafeMutableBytes { fill($0, seed: 6) }
        let last = try again.unpin().pin().get()
        #expect(last.report == .intact)
        #expect(last.withUnsafeBytes { firstMismatch($0, seed: 6) } == nil)
        #expect(arena.statistics.discardedBytes == 0)
        // Allocation under ENOMEM: typed error, nothing leaked.
        arena.injectOutOfMemory()
        #expect(throws: VolatileMemoryError.outOfMemory) { _ = try arena.allocate(byteCount: 4096) }
        #expect(arena.statistics.extentCount == 1)
    }

    @Test("A doomed pin can be skipped: residency pre-check, then pin discarding content",
          arguments: [Variant.userfaultfdFull, .canary])
    func discardingPin(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 16 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 8) }
        let volatile = pinned.unpin()
        try volatile.dropPages()
        #expect(volatile.residentPageCount() == 0)
        var fresh = try volatile.pin(discardingContent: true).get()
        #expect(fresh.report == .fresh)
        #expect(fresh.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        fresh.withUnsafeMutableBytes { fill($0, seed: 9) }
        let again = try fresh.unpin().pin().get()
        #expect(again.report == .intact)
        #expect(again.withUnsafeBytes { firstMismatch($0, seed: 9) } == nil)
        #expect(arena.statistics.userfaultfdFaultsHandled == 0, "a fresh pin must not fault through the handler")
    }

    @Test("userfaultfd refused: automatic falls back to canaries and says why; explicit userfaultfd throws")
    func userfaultfdRefused() throws {
        var configuration = VolatileArena.Configuration(regionByteCount: 16 << 20)
        configuration.simulatedUserfaultfdRefusal = .notPermitted
        let arena = try VolatileArena(configuration: configuration)
        #expect(arena.detection.mechanism == .canary)
        #expect(arena.detection.reason.contains("EPERM"))
        // And the fallback really detects drops.
        var pinned = try arena.allocate(byteCount: 4 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 4) }
        let volatile = pinned.unpin()
        try volatile.dropPages([1])
        #expect(try volatile.pin().get().report == .dropped(pages: [1]))

        configuration.strategy = .userfaultfd
        #expect(throws: VolatileMemoryError.self) { _ = try VolatileArena(configuration: configuration) }
    }

    @Test("Freed extents are recycled for allocations that need no zeroed memory",
          arguments: [Variant.userfaultfdFull, .userfaultfdUserModeOnly, .canary])
    func recycling(variant: Variant) throws {
        let arena = try variant.makeArena()
        let size = 64 * arena.pageSize
        do {
            var pinned = try arena.allocate(byteCount: size)
            pinned.withUnsafeMutableBytes { fill($0, seed: 21) }
        }
        #expect(arena.statistics.recycledBytes == size)
        #expect(arena.statistics.extentCount == 0)
        // A zero-filled allocation never gets a recycled extent.
        let zeroed = try arena.allocate(byteCount: size)
        #expect(zeroed.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        #expect(arena.statistics.recycledReuses == 0)
        // zeroFilled: false reuses it, even after the kernel took some of its pages.
        do {
            var pinned = try arena.allocate(byteCount: size)
            pinned.withUnsafeMutableBytes { fill($0, seed: 22) }
        }
        // Recycled extents are not volatile extents: drop their pages explicitly, as reclaim may.
        #expect(arena.statistics.recycledBytes == 2 * size)
        #expect(try arena.dropRecycledPages() == 2 * 64, "MADV_PAGEOUT did not drop the recycled pages")
        #expect(arena.residentBytesInRegions() == size, "only the zero-filled extent is resident")
        var reused = try arena.allocate(byteCount: size, zeroFilled: false)
        #expect(arena.statistics.recycledReuses == 1)
        #expect(arena.statistics.recycledBytes == size)
        #expect(reused.report == .fresh)
        #expect(reused.residentPageCount() == 64)
        reused.withUnsafeMutableBytes { fill($0, seed: 23) }
        // It behaves like any extent afterwards: drops are detected exactly.
        let volatile = reused.unpin()
        try volatile.dropPages([3])
        let again = try volatile.pin().get()
        #expect(again.report == .dropped(pages: [3]))
        #expect(arena.statistics.userfaultfdFaultsHandled == 0)
        _ = consume zeroed
    }

    @Test("Extents freed while pinned stay warm within the warm budget; the rest are volatile",
          arguments: [Variant.userfaultfdFull, .userfaultfdUserModeOnly, .canary])
    func warmRecycling(variant: Variant) throws {
        var configuration = variant.configuration
        let size = 64 * 4096
        configuration.warmRecycledByteLimit = size
        _ = try variant.makeArena()  // Skips the user-mode-only case on kernels without it.
        let arena = try VolatileArena(configuration: configuration)
        guard arena.pageSize == 4096 else { return }
        // Two pinned extents freed: the first fits the warm budget, the second does not.
        var first = try arena.allocate(byteCount: size)
        first.withUnsafeMutableBytes { fill($0, seed: 31) }
        var second = try arena.allocate(byteCount: size)
        second.withUnsafeMutableBytes { fill($0, seed: 32) }
        _ = consume first
        _ = consume second
        #expect(arena.statistics.recycledBytes == 2 * size)
        #expect(arena.statistics.warmRecycledBytes == size)
        // An extent freed while volatile is never warm, even with budget left.
        var third = try arena.allocate(byteCount: 2 * size)
        third.withUnsafeMutableBytes { fill($0, seed: 33) }
        do { _ = third.unpin() }
        #expect(arena.statistics.warmRecycledBytes == size)
        // Reuse takes the warm one first, with its bytes as they were (nothing re-faulted).
        var reused = try arena.allocate(byteCount: size, zeroFilled: false)
        #expect(arena.statistics.warmRecycledBytes == 0)
        #expect(arena.statistics.recycledReuses == 1)
        #expect(reused.withUnsafeBytes { verify($0, seed: 31) })
        #expect(reused.residentPageCount() == 64)
        // It behaves like any extent afterwards.
        reused.withUnsafeMutableBytes { fill($0, seed: 34) }
        let volatile = reused.unpin()
        try volatile.dropPages([5])
        let again = try volatile.pin().get()
        #expect(again.report == .dropped(pages: [5]))
        _ = consume again
        // Freed while pinned, within budget again: warm; drop injection still reaches it.
        #expect(arena.statistics.warmRecycledBytes == size)
        #expect(try arena.dropRecycledPages() == 64 + 64 + 128, "warm recycled pages were not made droppable")
        #expect(arena.statistics.warmRecycledBytes == 0)
        #expect(arena.statistics.recycledBytes == 4 * size)
        // Trimming gives everything back.
        arena.trimRecycledExtents()
        #expect(arena.residentBytesInRegions() == 0)
        arena.checkInvariants()
    }

    @Test("While pins re-dirty in user mode (swap usable), no recycled extent stays warm")
    func noWarmRecyclingWhileSwapIsUsable() throws {
        let arena = try VolatileArena(configuration: Variant.userfaultfdFull.configuration)
        let page = arena.pageSize
        do {
            var pinned = try arena.allocate(byteCount: 16 * page)
            pinned.withUnsafeMutableBytes { fill($0, seed: 36) }
        }
        #expect(arena.statistics.warmRecycledBytes == 16 * page)
        arena.redirtiesInUserMode = true
        // The warm extent was made volatile, and stays listed for reuse.
        #expect(arena.statistics.warmRecycledBytes == 0)
        #expect(arena.statistics.recycledBytes == 16 * page)
        do {
            var pinned = try arena.allocate(byteCount: 8 * page)
            pinned.withUnsafeMutableBytes { fill($0, seed: 37) }
        }
        #expect(arena.statistics.warmRecycledBytes == 0)
        #expect(arena.statistics.recycledBytes == 24 * page)
    }

    @Test("A zero warm budget keeps every recycled extent volatile")
    func warmRecyclingDisabled() throws {
        var configuration = Variant.userfaultfdFull.configuration
        configuration.warmRecycledByteLimit = 0
        let arena = try VolatileArena(configuration: configuration)
        do {
            var pinned = try arena.allocate(byteCount: 16 * arena.pageSize)
            pinned.withUnsafeMutableBytes { fill($0, seed: 35) }
        }
        #expect(arena.statistics.recycledBytes == 16 * arena.pageSize)
        #expect(arena.statistics.warmRecycledBytes == 0)
    }

    @Test("automatic reports what it picked and why")
    func automaticReportsChoice() throws {
        let arena = try VolatileArena()
        #expect(!arena.detection.reason.isEmpty)
        // As root on Linux 6.18 (this project's machines) full userfaultfd is granted.
        if getuid() == 0 {
            #expect(arena.detection.mechanism == .userfaultfd(.full))
        }
        // MADV_POPULATE_WRITE needs 5.14; before, the fallback (KernelFeatureTests checks its reason).
        #expect((arena.populateMethod == .populateWrite) == (KernelVersion.running >= KernelVersion.populateWrite))
        let forced = try VolatileArena(configuration: .init(strategy: .canary))
        #expect(forced.detection.mechanism == .canary)
    }
}

#if canImport(Glibc)
import Glibc
#endif
