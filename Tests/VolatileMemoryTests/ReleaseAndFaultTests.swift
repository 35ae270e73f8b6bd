#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VolatileMemory
import VolatileSystem

/// Paths the lifecycle tests do not reach: stray faults, freeing locked pages, partial
/// zero-page mapping, failures of recycled allocations, and what an arena leaves behind.
@Suite("Release paths, stray faults and teardown")
struct ReleaseAndFaultTests {
    @Test("A stray read of a dropped volatile page does not make the next pin trust its zeros",
          arguments: Variant.allCases)
    func strayReadOfDroppedPage(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 4 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 31) }
        let volatile = pinned.unpin()
        #expect(try volatile.dropPages([1]) == 1)
        // A caller bug: reading volatile memory. It maps the zero page there (through the
        // handler with userfaultfd), after which mincore calls the page resident.
        let word = (volatile.token.base + arena.pageSize + 8).load(as: UInt64.self)
        #expect(word == 0)
        #expect(volatile.residentPageCount() == 4)
        let repinned = try volatile.pin().get()
        #expect(repinned.report == .dropped(pages: [1]))
    }

    @Test("Freeing an extent the caller mlock'ed still gives zero-filled memory to the next allocation")
    func freeingLockedExtent() throws {
        var configuration = Variant.userfaultfdFull.configuration
        configuration.recycledByteLimit = 0
        let arena = try VolatileArena(configuration: configuration)
        let size = 8 * arena.pageSize
        var pinned = try arena.allocate(byteCount: size)
        pinned.withUnsafeMutableBytes { fill($0, seed: 41) }
        let base = pinned.baseAddress
        guard mlock(base, size) == 0 else { return }  // Not allowed here: nothing to test.
        _ = consume pinned
        let again = try arena.allocate(byteCount: size)
        #expect(again.baseAddress == base, "the test needs the same run back")
        #expect(again.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }, "stale bytes in a zero-filled allocation")
    }

    @Test("UFFDIO_ZEROPAGE over many alternating present and absent pages maps them all")
    func zeroPagesOverAlternatingRange() throws {
        let arena = try Variant.userfaultfdFull.makeArena()
        let handler = try #require(arena.userfaultfd)
        let pages = 2600
        var pinned = try arena.allocate(byteCount: pages * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 51) }
        for page in stride(from: 0, to: pages, by: 2) {
            #expect(madvise(pinned.baseAddress + page * arena.pageSize, arena.pageSize, MADV_DONTNEED) == 0)
        }
        #expect(pinned.residentPageCount() == pages / 2)
        // Each call maps one absent page and stops at the next present one (EAGAIN with
        // progress): that must not count towards the give-up bound.
        let result = handler.mapZeroPages(pinned.baseAddress, byteCount: pages * arena.pageSize, pageSize: arena.pageSize)
        #expect(throws: Never.self) { try result.get() }
        #expect(pinned.residentPageCount() == pages)
        #expect(arena.statistics.userfaultfdFaultsHandled == 0)
    }

    @Test("A recycled allocation that fails leaves nothing allocated and the counters straight",
          .enabled(if: VolatileArena.internalChecksEnabled, "the ENOMEM hook needs -DVOLATILE_INTERNAL_CHECKS"),
          arguments: [Variant.userfaultfdFull, .userfaultfdUserModeOnly, .canary])
    func failedRecycledAllocation(variant: Variant) throws {
        // A volatile recycled extent: its reuse populates (a warm one needs no system call).
        var configuration = variant.configuration
        configuration.warmRecycledByteLimit = 0
        _ = try variant.makeArena()  // Skips the user-mode-only case on kernels without it.
        let arena = try VolatileArena(configuration: configuration)
        let size = 16 * arena.pageSize
        do {
            var pinned = try arena.allocate(byteCount: size)
            pinned.withUnsafeMutableBytes { fill($0, seed: 61) }
        }
        #expect(arena.statistics.recycledBytes == size)
        arena.injectOutOfMemory()
        #expect(throws: VolatileMemoryError.outOfMemory) { _ = try arena.allocate(byteCount: size, zeroFilled: false) }
        let statistics = arena.statistics
        #expect(statistics.recycledBytes == 0)
        #expect(statistics.recycledReuses == 0)
        #expect(statistics.extentCount == 0)
        #expect(statistics.pinnedBytes == 0 && statistics.volatileBytes == 0 && statistics.discardedBytes == 0)
        #expect(statistics.freshPins == 1)
        #expect(arena.residentBytesInRegions() == 0, "the failed extent's pages were not given back")
        #expect(arena.allocatorShape().allSatisfy { $0.freeBlocks == 1 })
        arena.checkInvariants()
    }

    @Test("Freeing a discarded extent and trimming keep every counter at zero",
          .enabled(if: VolatileArena.internalChecksEnabled, "the ENOMEM hook needs -DVOLATILE_INTERNAL_CHECKS"),
          arguments: [Variant.userfaultfdFull, .canary])
    func discardedExtentFreed(variant: Variant) throws {
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 8 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 71) }
        let volatile = pinned.unpin()
        try volatile.dropPages([2])  // So the canary path also has to populate.
        arena.injectOutOfMemory()
        let outcome = volatile.pin()
        switch consume outcome {
        case .pinned: Issue.record("pin succeeded despite ENOMEM")
        case .failed(let discarded, _):
            #expect(arena.statistics.discardedBytes == 8 * arena.pageSize)
            _ = consume discarded
        }
        arena.trimRecycledExtents()
        let statistics = arena.statistics
        #expect(statistics.discardedBytes == 0 && statistics.pinnedBytes == 0 && statistics.volatileBytes == 0)
        #expect(statistics.extentCount == 0 && statistics.recycledBytes == 0)
        #expect(arena.residentBytesInRegions() == 0)
    }

    @Test("An arena's teardown joins the handler thread and unmaps its regions",
          arguments: [Variant.userfaultfdFull, .userfaultfdUserModeOnly, .canary])
    func teardownReleasesEverything(variant: Variant) throws {
        weak var handler: UserfaultfdHandler?
        weak var region: Region?
        do {
            let arena = try variant.makeArena()
            do {
                var pinned = try arena.allocate(byteCount: 4 * arena.pageSize)
                pinned.withUnsafeMutableBytes { fill($0, seed: 81) }
                let volatile = pinned.unpin()
                _ = try volatile.dropPages([0])
                _ = try volatile.pin().get()
            }
            handler = arena.userfaultfd
            region = arena.state.withLock { $0.regions.first }
            #expect(region != nil)
            #expect((handler != nil) == (variant != .canary))
        }
        // The handler thread holds a retain until it returns: nil means it was joined.
        #expect(handler == nil, "handler thread still running")
        #expect(region == nil, "region (and its mapping) leaked")
    }

    @Test("The userfaultfd handler thread stops on a persistent read error instead of spinning")
    func handlerStopsOnPersistentError() throws {
        // /dev/null opened write-only: poll always says readable, read always fails with EBADF.
        let bad = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(bad >= 0)
        let wake = try Syscall.eventfd().get()
        let handler = try UserfaultfdHandler.start(fd: bad, mode: .full, wakeFD: wake).get()
        let deadline = ContinuousClock.now + .seconds(10)
        while handler.stoppedByError == nil && ContinuousClock.now < deadline { usleep(1_000) }
        #expect(handler.stoppedByError == .badFileDescriptor)
        handler.shutdown()  // Joins the thread: returns only because it has ended.
    }
}
