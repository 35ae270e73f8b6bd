import VolatileSystem
import CVolatileShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Drop injection for tests (package access; the public form is VolatileCacheTesting's
// ArenaDropInjector and CacheDropInjector): real kernel drops with MADV_PAGEOUT (Linux 5.4), which reclaims
// clean lazily-freed pages at once without global pressure. It is harmless on pinned pages:
// they are dirty anonymous memory, which cannot be reclaimed without swap. So a range that is
// re-pinned between the snapshot and the advice simply keeps its pages.
extension VolatileArena {
    /// Drops the resident pages of every volatile extent, now. Recycled extents (freed,
    /// kept for reuse) are not volatile extents and keep their pages.
    /// - Returns: The number of pages asked to be dropped.
    /// - Throws: ``VolatileMemoryError/systemCall(_:_:)`` if the kernel lacks `MADV_PAGEOUT`.
    /// - Complexity: O(volatile extents) system calls.
    @discardableResult
    package func dropAllVolatilePages() throws(VolatileMemoryError) -> Int {
        var pages = 0
        for range in volatileRanges() {
            try pageOut(range.base, pageCount: range.pageCount)
            pages += range.pageCount
        }
        return pages
    }

    /// Drops a seeded random fraction of the pages of the volatile extents, now.
    /// - Parameters:
    ///   - fraction: The probability, from 0 to 1, that each volatile page is dropped.
    ///   - seed: Seed of the page choice (same seed and same extents, same pages).
    /// - Returns: The number of pages asked to be dropped.
    /// - Throws: ``VolatileMemoryError/systemCall(_:_:)`` if the kernel lacks `MADV_PAGEOUT`.
    /// - Complexity: O(volatile pages).
    @discardableResult
    package func dropVolatilePages(fraction: Double, seed: UInt64) throws(VolatileMemoryError) -> Int {
        var generator = SplitMix64(seed: seed)
        var dropped = 0
        // Sorted, so the choice depends on the seed and the extents only, not on hashing.
        let ranges = volatileRanges().sorted { UInt(bitPattern: $0.base) < UInt(bitPattern: $1.base) }
        let threshold = UInt64(max(0, min(1, fraction)) * Double(UInt64.max >> 11)) << 11
        for range in ranges {
            var runStart = -1
            for page in 0...range.pageCount {
                let chosen = page < range.pageCount && generator.next() < threshold
                if chosen {
                    if runStart < 0 { runStart = page }
                } else if runStart >= 0 {
                    try pageOut(range.base + runStart * pageSize, pageCount: page - runStart)
                    dropped += page - runStart
                    runStart = -1
                }
            }
        }
        return dropped
    }

    /// Drops the resident pages of every recycled extent (freed, kept for reuse), as
    /// reclaim may: for tests of reuse after a drop. Retries like ``VolatileExtent/dropPages(_:)``.
    /// - Returns: How many recycled pages are not resident afterwards.
    /// - Throws: ``VolatileMemoryError/systemCall(_:_:)`` if the kernel lacks `MADV_PAGEOUT`.
    @discardableResult
    package func dropRecycledPages() throws(VolatileMemoryError) -> Int {
        coolWarmRecycledExtents()
        let ranges = state.withLock { state in
            state.recycled.flatMap { pages, extents in
                extents.map { VolatileRange(base: $0.region.address(ofPage: $0.firstPage), pageCount: pages) }
            }
        }
        var gone = 0
        for range in ranges {
            gone += try pageOutUntilGone(range.base, pageCount: range.pageCount, pages: Array(0..<range.pageCount))
        }
        return gone
    }

    /// Makes the warm (populated) recycled extents volatile, so that reclaim can take their
    /// pages without swapping them (drop injection, and swap becoming usable): they are taken off the list while `MADV_FREE` runs, so that no
    /// allocation reuses one meanwhile, then listed again as volatile (`MADV_FREE` ignores
    /// the debug trap's `PROT_NONE`).
    func coolWarmRecycledExtents() {
        let warm = state.withLock { state -> [(RecycledExtent, Int)] in
            var taken: [(RecycledExtent, Int)] = []
            for (pages, extents) in state.recycled {
                let (hot, cold) = (extents.filter(\.isWarm), extents.filter { !$0.isWarm })
                taken += hot.map { ($0, pages) }
                state.recycled[pages] = cold.isEmpty ? nil : cold
                state.recycledPages -= hot.count * pages
            }
            state.warmRecycledPages = 0
            return taken
        }
        for (extent, pages) in warm {
            _ = Syscall.advise(extent.region.address(ofPage: extent.firstPage), byteCount: pages * pageSize, vc_madv_free())
        }
        state.withLock { state in
            for (extent, pages) in warm {
                state.recycled[pages, default: []].append(RecycledExtent(region: extent.region, firstPage: extent.firstPage, isWarm: false))
                state.recycledPages += pages
            }
        }
    }

    /// Drops `pages` (nil: all) of the extent that was at `range` when it was looked up, like
    /// ``VolatileExtent/dropPages(_:)``, without holding the extent. Safe if the extent has been
    /// re-pinned or freed since: `MADV_PAGEOUT` cannot take dirty anonymous pages (no swap), so
    /// pinned content stays; the call then only retries for about 200 ms and returns fewer pages.
    /// - Returns: How many of the requested pages are not resident afterwards.
    /// - Throws: ``VolatileMemoryError/systemCall(_:_:)`` if the kernel lacks `MADV_PAGEOUT`.
    @discardableResult
    package func dropPages(_ pages: [Int]?, in range: VolatileRange) throws(VolatileMemoryError) -> Int {
        let requested = pages.map { Set($0.filter { $0 >= 0 && $0 < range.pageCount }).sorted() } ?? Array(0..<range.pageCount)
        return try pageOutUntilGone(range.base, pageCount: range.pageCount, pages: requested)
    }

    func pageOut(_ base: UnsafeMutableRawPointer, pageCount: Int) throws(VolatileMemoryError) {
        if case .failure(let error) = Syscall.advise(base, byteCount: pageCount * pageSize, vc_madv_pageout()) {
            throw .systemCall("madvise(MADV_PAGEOUT)", error)
        }
    }

    /// Pages out `pages` (sorted, distinct indices from `base`), repeating the advice while
    /// mincore still shows some resident (see ``VolatileExtent/dropPages(_:)`` for why).
    /// - Returns: How many of `pages` are not resident afterwards.
    func pageOutUntilGone(
        _ base: UnsafeMutableRawPointer, pageCount: Int, pages requested: [Int]
    ) throws(VolatileMemoryError) -> Int {
        var remaining = requested
        for attempt in 0..<40 {
            var index = 0
            while index < remaining.count {
                var end = index + 1
                while end < remaining.count && remaining[end] == remaining[end - 1] + 1 { end += 1 }
                try pageOut(base + remaining[index] * pageSize, pageCount: end - index)
                index = end
            }
            // If mincore fails, nothing is known to be gone: keep trying.
            let stillResident = withResidency(base, pageCount: pageCount) { vector in
                remaining.filter { vector[$0] & 1 != 0 }
            }
            if case .success(let resident) = stillResident { remaining = resident }
            if remaining.isEmpty { break }
            // A page still in another CPU's LRU batch cannot be paged out until that CPU
            // drains it; MADV_PAGEOUT drains only the caller's CPU. From the third attempt,
            // advise once from every CPU this thread may run on, so each batch is drained.
            if attempt >= 2, attempt % 2 == 0 {
                try pageOutFromEveryCPU(base, pages: remaining)
            } else if attempt > 0 {
                usleep(5_000)
            } else {
                sched_yield()
            }
        }
        return requested.count - remaining.count
    }

    /// Advises `MADV_PAGEOUT` on `pages` once on each CPU of the thread's affinity mask (the
    /// thread moves there for the call), then restores the mask. Without affinity control it
    /// does nothing; the caller's retries go on.
    private func pageOutFromEveryCPU(_ base: UnsafeMutableRawPointer, pages: [Int]) throws(VolatileMemoryError) {
        guard case .success(let original) = Syscall.threadAffinity() else { return }
        defer { _ = Syscall.setThreadAffinity(original) }
        for word in original.indices where original[word] != 0 {
            for bit in 0..<64 where original[word] & (1 << UInt64(bit)) != 0 {
                var single = [UInt64](repeating: 0, count: 16)
                single[word] = 1 << UInt64(bit)
                guard case .success = Syscall.setThreadAffinity(single) else { continue }
                for page in pages { try pageOut(base + page * pageSize, pageCount: 1) }
            }
        }
    }
}

extension VolatileExtent {
    /// Drops the given pages of this volatile extent now, with `MADV_PAGEOUT`: a real kernel
    /// drop, as under memory pressure. For tests.
    ///
    /// A page that was written just before the unpin on another CPU can sit in that CPU's
    /// LRU batch, where `MADV_PAGEOUT` (which drains only the calling CPU's batch) cannot
    /// reclaim it yet. So the advice is repeated, with short pauses, until mincore shows the
    /// pages gone (at most about 200 ms); pages still resident after that are left resident.
    /// - Parameter pages: Page indices (from 0) to drop; nil drops every page.
    /// - Returns: How many of the requested pages are not resident afterwards.
    /// - Throws: ``VolatileMemoryError/systemCall(_:_:)`` if the kernel lacks `MADV_PAGEOUT`.
    /// - Complexity: One system call per run of consecutive pages and attempt.
    @discardableResult
    package func dropPages(_ pages: [Int]? = nil) throws(VolatileMemoryError) -> Int {
        try token.arena.takeUnretainedValue().dropPages(pages, in: range)
    }

    /// Where this extent's pages are, for ``VolatileArena/dropPages(_:in:)`` after the lock
    /// that found the extent is released.
    package var range: VolatileArena.VolatileRange {
        VolatileArena.VolatileRange(base: token.base, pageCount: token.pageCount)
    }
}
