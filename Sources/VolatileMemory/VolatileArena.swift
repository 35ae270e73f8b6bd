import CVolatileShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VolatileSystem

/// Memory the kernel may take back: page-aligned extents in large sparse mappings, each
/// either pinned (ordinary memory) or volatile (`MADV_FREE`: dropped under pressure,
/// without swap I/O), with exact, race-free detection of what was dropped.
///
/// ```text
///   allocate ──► PinnedExtent ──unpin()──► VolatileExtent ──pin()──► PinnedExtent
///   (fresh)       read/write      MADV_FREE   no access      re-dirty   report: intact
///                                             kernel may                 or dropped pages
///                                             drop pages
/// ```
///
/// An arena knows nothing of keys or eviction: that is the cache's business. It is safe to
/// use from any thread; each extent is owned by one value at a time (`~Copyable`).
/// Extents keep their arena alive.
public final class VolatileArena: Sendable {
    /// The configuration the arena was created with.
    public let configuration: Configuration
    /// The drop-detection mechanism in use, and why it was picked.
    public let detection: DropDetection
    /// How pages are re-dirtied on pin, and why.
    public let populateMethod: PopulateMethod
    /// The page size (bytes): extents are whole pages.
    public let pageSize: Int
    /// The largest extent this arena hands out, in bytes.
    public let maximumExtentByteCount: Int

    let userfaultfd: UserfaultfdHandler?
    /// Non-zero value stored in each page's first word while volatile (canary strategy).
    let cookie: UInt64
    let state: LockedValue<State>
    /// Re-dirty by user-mode touches instead of `MADV_POPULATE_WRITE` (see ``redirtiesInUserMode``).
    let userModeRedirty = Atomic<Bool>(false)
    /// Fault injection for tests: the next N populate calls fail as if the kernel said ENOMEM.
    let injectedPopulateFailures = FaultCountdown()
    /// Test hook: called at the racy points of the user-mode-only populate loop (only after
    /// an EFAULT, never on an intact pin), so a test can drop pages exactly there.
    let populateRaceHook = LockedValue<(@Sendable (PopulateRacePoint) -> Void)?>(nil)

    /// Where ``populateRaceHook`` is called, in one round of the user-mode-only populate loop.
    enum PopulateRacePoint: Equatable {
        /// `MADV_POPULATE_WRITE` returned EFAULT; mincore has not run yet.
        case afterFault(round: Int)
        /// The absent pages were recorded and mapped; the next populate has not run yet.
        case beforeRetry(round: Int)
    }
    /// The debug use-after-unpin trap, when configured (`VolatileArena+DebugProtection.swift`).
    package let debugProtection: DebugProtection?

    struct ExtentKey: Hashable {
        var region: Int
        var firstPage: Int
    }

    struct State {
        var regions: [Region] = []
        var allocators: [ExtentAllocator] = []
        var reservedBytes = 0
        var notes: [String] = []
        /// Volatile extents (for drop injection and residency figures): key -> page count.
        var volatileExtents: [ExtentKey: Int] = [:]
        var counters = Counters()
        /// Freed extents kept for reuse, by page count (volatile, allocator runs still taken).
        var recycled: [Int: [RecycledExtent]] = [:]
        var recycledPages = 0
        /// Recycled pages kept populated (not `MADV_FREE`), counted in `recycledPages` too.
        var warmRecycledPages = 0

        /// Gives back the storage of tables a bulk release has left mostly empty (the volatile
        /// extents, the recycled lists, the allocators' free blocks): dictionaries never shrink
        /// on their own, and after a `removeAll` of a million small objects these held 4.5 MiB.
        mutating func shrinkTablesIfSparse() {
            volatileExtents.shrinkIfSparse()
            if recycled.isEmpty && recycled.capacity > 64 { recycled = [:] }
            for index in allocators.indices { allocators[index].shrinkTablesIfSparse() }
        }

        /// Takes an extent's pages out of the counter (and, if volatile, out of drop injection).
        mutating func forget(_ token: ExtentToken, accountedAs accounting: Accounting) {
            switch accounting {
            case .pinned: counters.pinnedPages -= token.pageCount
            case .volatile:
                volatileExtents.removeValue(forKey: token.key)
                counters.volatilePages -= token.pageCount
            case .discarded: counters.discardedPages -= token.pageCount
            case .unaccounted: break
            }
        }
    }

    struct RecycledExtent {
        var region: Region
        var firstPage: Int
        /// Populated and dirty since its last pin: reuse needs no system call.
        var isWarm: Bool
    }

    struct Counters {
        var pinnedPages = 0
        var volatilePages = 0
        var discardedPages = 0
        var freshPins = 0
        var intactPins = 0
        var droppedPins = 0
        var droppedPagesDetected = 0
        var unpins = 0
        var unpinFailures = 0
        var pinFailures = 0
        var recycledReuses = 0
    }

    /// Which counter an extent's pages are in when it leaves that state.
    enum Accounting {
        case pinned, volatile, discarded
        /// A failed allocation: never counted.
        case unaccounted
    }

    /// Creates an arena. Probes the kernel once: `MADV_FREE` must work, `MADV_POPULATE_WRITE`
    /// is used if present, and userfaultfd if allowed (unless canaries are asked for).
    /// No address space is reserved until the first allocation.
    /// - Parameter configuration: Reservation sizes and strategy.
    /// - Throws: ``VolatileMemoryError/madvFreeUnsupported(_:)`` on kernels without
    ///   `MADV_FREE`; ``VolatileMemoryError/userfaultfdUnavailable(reason:)`` when
    ///   `.userfaultfd` is asked for and refused; ``VolatileMemoryError/systemCall(_:_:)``
    ///   when even the one-page probe mapping is refused.
    public init(configuration: Configuration = .default) throws(VolatileMemoryError) {
        let pageSize = systemPageSize
        var configuration = configuration
        configuration.regionByteCount = max(pageSize, roundUp(configuration.regionByteCount, to: pageSize))
        configuration.minimumRegionByteCount = max(
            pageSize, min(configuration.regionByteCount, roundUp(configuration.minimumRegionByteCount, to: pageSize)))
        self.configuration = configuration
        self.pageSize = pageSize
        self.maximumExtentByteCount = roundUp(
            configuration.maximumExtentByteCount ?? configuration.regionByteCount, to: pageSize)

        let probe = try KernelProbe.run(pageSize: pageSize, allowsPopulateWrite: configuration.allowsPopulateWrite)
        self.populateMethod = probe.populateMethod

        switch configuration.strategy {
        case .canary:
            self.userfaultfd = nil
            self.detection = DropDetection(mechanism: .canary, reason: "requested by configuration")
        case .userfaultfd, .automatic:
            switch UserfaultfdHandler.open(
                preferUserModeOnly: configuration.prefersUserModeOnlyUserfaultfd,
                simulatedRefusal: configuration.simulatedUserfaultfdRefusal) {
            case .success(let handler):
                self.userfaultfd = handler
                let why: String
                switch (handler.mode, configuration.prefersUserModeOnlyUserfaultfd) {
                case (.full, _): why = "full userfaultfd granted (kernel-mode faults reach the handler thread)"
                case (.userModeOnly, true): why = "user-mode-only requested by configuration"
                case (.userModeOnly, false): why = "full userfaultfd refused (EPERM); UFFD_USER_MODE_ONLY granted"
                }
                self.detection = DropDetection(mechanism: .userfaultfd(handler.mode), reason: why)
            case .failure(let error):
                if configuration.strategy == .userfaultfd { throw error }
                self.userfaultfd = nil
                let reason: String
                if case .userfaultfdUnavailable(let why) = error { reason = why } else { reason = "\(error)" }
                self.detection = DropDetection(mechanism: .canary, reason: "userfaultfd unavailable: \(reason)")
            }
        }
        var cookie: UInt64 = 0
        var generator = SystemRandomNumberGenerator()
        while cookie == 0 { cookie = generator.next() }
        self.cookie = cookie
        self.state = LockedValue(State())
        self.debugProtection = configuration.debugProtectsUnpinned ? DebugProtection() : nil
    }

    deinit {
        // Extents retain the arena, so none is left: only regions (unmapped when `state`
        // goes, recycled extents included) and the handler (thread joined, fds closed) remain.
        userfaultfd?.shutdown()
        debugUnregisterRegions()
    }

    /// Notes about reservations the kernel refused and what the arena did instead.
    public var reservationNotes: [String] { state.withLock { $0.notes } }

    /// Allocates a fresh, pinned extent of at least `byteCount` bytes.
    ///
    /// The extent's pages are mapped and dirtied in one batch before returning, so the
    /// first writes into it (a regenerator's) take no fault, and no userfaultfd round trip.
    /// - Parameters:
    ///   - byteCount: The bytes needed; the extent covers whole pages.
    ///   - zeroFilled: When false, the arena may hand back a recycled extent of the same page
    ///     count whose bytes are unspecified (stale content of a freed extent): the caller
    ///     promises to write every byte it will read. This skips a page fault per page.
    /// - Returns: The pinned extent, with report ``PinReport/fresh``.
    /// - Throws: ``VolatileMemoryError/zeroByteCount``, ``VolatileMemoryError/extentTooLarge(requestedBytes:maximumBytes:)``,
    ///   ``VolatileMemoryError/reservationFailed(requestedBytes:_:)``,
    ///   ``VolatileMemoryError/reservationLimitReached(limitBytes:)``, ``VolatileMemoryError/outOfMemory``,
    ///   or ``VolatileMemoryError/systemCall(_:_:)`` when the kernel refuses to register or map
    ///   the pages. Nothing is left allocated after a throw.
    /// - Complexity: O(1) for the bookkeeping, plus populating the pages.
    public func allocate(byteCount: Int, zeroFilled: Bool = true) throws(VolatileMemoryError) -> PinnedExtent {
        guard byteCount > 0 else { throw .zeroByteCount }
        guard byteCount <= maximumExtentByteCount else {
            throw .extentTooLarge(requestedBytes: byteCount, maximumBytes: maximumExtentByteCount)
        }
        let pages = (byteCount + pageSize - 1) / pageSize
        let token: ExtentToken
        let prepared: Result<Void, VolatileMemoryError>
        let recycled = zeroFilled ? nil : takeRecycled(pages: pages, byteCount: byteCount)
        if let (recycledToken, isWarm) = recycled {
            token = recycledToken
            prepared = debugUnprotect(token).flatMap { () -> Result<Void, VolatileMemoryError> in
                guard isWarm else { return prepareRecycled(token) }
                // Populated since its last pin: nothing to map. Stray drop bits are no news.
                token.region.takeUnretainedValue().takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
                return .success(())
            }
        } else {
            token = try reserveExtent(pages: pages, byteCount: byteCount)
            prepared = debugUnprotect(token).flatMap { prepareFresh(token) }
        }
        if case .failure(let error) = prepared {
            releaseExtent(token, accountedAs: .unaccounted, recycle: false)
            token.arena.release()
            throw error
        }
        state.withLock {
            $0.counters.pinnedPages += pages
            $0.counters.freshPins += 1
            if recycled != nil { $0.counters.recycledReuses += 1 }
        }
        return PinnedExtent(token: token, report: .fresh)
    }

    /// Releases every recycled extent: their pages go back to the kernel now, and their
    /// runs to the allocator.
    /// - Returns: The bytes released.
    /// - Complexity: O(recycled extents) system calls.
    @discardableResult
    public func trimRecycledExtents() -> Int {
        let taken = state.withLock { state -> [(RecycledExtent, Int)] in
            let list = state.recycled.flatMap { pages, extents in extents.map { ($0, pages) } }
            state.recycled.removeAll()
            state.recycledPages = 0
            state.warmRecycledPages = 0
            return list
        }
        for (extent, pages) in taken {
            releasePages(extent.region.address(ofPage: extent.firstPage), pageCount: pages)
            extent.region.takeDropped(first: extent.firstPage, count: pages) { _ in }
        }
        state.withLock { state in
            for (extent, pages) in taken {
                state.allocators[extent.region.index].free(start: extent.firstPage, pages: pages)
            }
            state.shrinkTablesIfSparse()
        }
        return taken.reduce(0) { $0 + $1.1 } * pageSize
    }

    /// Takes a recycled extent of `pages` pages, a warm one first.
    /// - Returns: Its token, and whether it is warm (populated: no preparation needed).
    private func takeRecycled(pages: Int, byteCount: Int) -> (ExtentToken, isWarm: Bool)? {
        let taken = state.withLock { state -> RecycledExtent? in
            guard var extents = state.recycled.removeValue(forKey: pages) else { return nil }
            let extent = extents.remove(at: extents.lastIndex(where: \.isWarm) ?? extents.count - 1)
            if !extents.isEmpty { state.recycled[pages] = extents }
            state.recycledPages -= pages
            if extent.isWarm { state.warmRecycledPages -= pages }
            return extent
        }
        guard let taken else { return nil }
        let token = makeToken(region: taken.region, firstPage: taken.firstPage, pages: pages, byteCount: byteCount)
        return (token, taken.isWarm)
    }

    /// A token for a run just taken from an allocator: it holds a retain of the arena.
    private func makeToken(region: Region, firstPage: Int, pages: Int, byteCount: Int) -> ExtentToken {
        ExtentToken(
            arena: Unmanaged.passRetained(self), region: Unmanaged.passUnretained(region),
            firstPage: firstPage, pageCount: pages, byteCount: byteCount,
            base: region.address(ofPage: firstPage))
    }

    // MARK: - Reservation

    private func reserveExtent(pages: Int, byteCount: Int) throws(VolatileMemoryError) -> ExtentToken {
        let result: Result<(Region, Int), VolatileMemoryError> = state.withLock { state in
            for index in state.allocators.indices {
                if let first = state.allocators[index].allocate(pages: pages) {
                    return .success((state.regions[index], first))
                }
            }
            switch reserveRegion(minimumPages: pages, state: &state) {
            case .success(let region):
                let first = state.allocators[region.index].allocate(pages: pages)!
                return .success((region, first))
            case .failure(let error):
                return .failure(error)
            }
        }
        let (region, first) = try result.get()
        return makeToken(region: region, firstPage: first, pages: pages, byteCount: byteCount)
    }

    /// Reserves a new region able to hold `minimumPages`, halving the size on refusal.
    private func reserveRegion(minimumPages: Int, state: inout State) -> Result<Region, VolatileMemoryError> {
        let needed = minimumPages * pageSize
        var size = max(configuration.regionByteCount, needed)
        let floor = max(configuration.minimumRegionByteCount, needed)
        if let limit = configuration.maximumReservedBytes {
            let room = (limit - state.reservedBytes) / pageSize * pageSize
            if room < needed { return .failure(.reservationLimitReached(limitBytes: limit)) }
            size = min(size, room)
        }
        while true {
            let reservation = Region.reserve(
                index: state.regions.count, byteCount: size, pageSize: pageSize,
                canary: detection.strategy == .canary, userfaultfd: userfaultfd != nil)
            switch reservation {
            case .success(let region):
                if let userfaultfd {
                    if case .failure(let error) = userfaultfd.register(region) {
                        return .failure(.systemCall("ioctl(UFFDIO_REGISTER)", error))
                    }
                }
                state.regions.append(region)
                debugRegister(region)
                state.allocators.append(ExtentAllocator(pageCount: region.pageCount))
                state.reservedBytes += size
                return .success(region)
            case .failure(let error):
                let smaller = size / 2 / pageSize * pageSize
                guard smaller >= floor else {
                    state.notes.append("reservation of \(size) bytes refused with \(error); giving up")
                    return .failure(.reservationFailed(requestedBytes: size, error))
                }
                state.notes.append("reservation of \(size) bytes refused with \(error); retrying with \(smaller)")
                size = smaller
            }
        }
    }

    /// Returns an extent's pages to the kernel and its run to the allocator, or keeps it
    /// (volatile) for reuse when there is room under ``Configuration/recycledByteLimit``.
    /// Does not release the token's arena reference (the caller does, last).
    /// - Parameters:
    ///   - accounting: The counter the extent's pages are in now.
    ///   - recycle: False to give the pages back whatever the room.
    func releaseExtent(_ token: ExtentToken, accountedAs accounting: Accounting, recycle: Bool = true) {
        let region = token.region.takeUnretainedValue()
        let limitPages = configuration.recycledByteLimit / pageSize
        if recycle && token.pageCount <= limitPages / 4 {
            // A pinned extent is kept warm (populated) while the warm budget lasts: its reuse
            // then costs nothing. Otherwise it is kept volatile: the kernel may take the
            // pages, and a reuse re-populates whatever is gone. The budget is reserved, and
            // MADV_FREE done, before publishing: once listed, another thread may reuse it.
            let warmLimitPages = min(configuration.warmRecycledByteLimit, configuration.recycledByteLimit) / pageSize
            let isWarm = accounting == .pinned && !redirtiesInUserMode && state.withLock { state -> Bool in
                guard state.warmRecycledPages + token.pageCount <= warmLimitPages else { return false }
                state.warmRecycledPages += token.pageCount
                return true
            }
            if accounting == .pinned && !isWarm {
                _ = Syscall.advise(token.base, byteCount: token.pageCount * pageSize, vc_madv_free())
            }
            debugProtect(token)
            let kept = state.withLock { state -> Bool in
                guard state.recycledPages + token.pageCount <= limitPages else {
                    if isWarm { state.warmRecycledPages -= token.pageCount }
                    return false
                }
                state.recycled[token.pageCount, default: []].append(
                    RecycledExtent(region: region, firstPage: token.firstPage, isWarm: isWarm))
                state.recycledPages += token.pageCount
                state.forget(token, accountedAs: accounting)
                return true
            }
            if kept { return }
        }
        releasePages(token.base, pageCount: token.pageCount)
        region.takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
        debugProtect(token)
        state.withLock { state in
            state.allocators[region.index].free(start: token.firstPage, pages: token.pageCount)
            state.forget(token, accountedAs: accounting)
        }
    }

    /// Makes the next `count` populate calls (pin, allocate) fail as if the kernel had
    /// returned ENOMEM, to test callers' out-of-memory paths without starving the machine.
    /// Only builds with `-DVOLATILE_INTERNAL_CHECKS` look at it (release builds do not pay a
    /// check on every populate): see ``internalChecksEnabled``.
    package func injectOutOfMemory(count: Int = 1) {
        injectedPopulateFailures.arm(count)
    }

    /// Whether this build has the internal checks and fault hooks (`-DVOLATILE_INTERNAL_CHECKS`).
    package static var internalChecksEnabled: Bool {
        #if VOLATILE_INTERNAL_CHECKS
        true
        #else
        false
        #endif
    }

    /// Verifies the allocators' invariants (expensive; for tests).
    package func checkInvariants() {
        state.withLock { state in
            for allocator in state.allocators { allocator.checkInvariants() }
        }
    }

    /// Free-block counts and largest free runs per region, for fragmentation tests.
    package func allocatorShape() -> [(freeBlocks: Int, largestFreeRun: Int, freePages: Int)] {
        state.withLock { state in
            state.allocators.map { ($0.freeBlockCount, $0.largestFreeRun, $0.freePages) }
        }
    }
}

/// Everything an extent value needs, trivially copyable so the `~Copyable` owners can hand
/// it on between states. Holds one retain of the arena, released when the extent is freed.
struct ExtentToken {
    let arena: Unmanaged<VolatileArena>
    let region: Unmanaged<Region>  // Kept alive by the arena.
    let firstPage: Int
    let pageCount: Int
    let byteCount: Int
    let base: UnsafeMutableRawPointer

    var key: VolatileArena.ExtentKey {
        VolatileArena.ExtentKey(region: region.takeUnretainedValue().index, firstPage: firstPage)
    }
}
