import VolatileSystem
import Synchronization
import CVolatileShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The pin and unpin paths. Race-freedom rests on one rule: the step that finds out whether
// a page was dropped is the step that re-dirties it (a populate write fault on an absent
// page-table entry, or a compare-and-swap on the page). Anything else (mincore) is only a
// shortcut that maps pages already known to be gone in one batch.
extension VolatileArena {
    /// Re-pins a volatile (or discarded) extent. Bookkeeping first, so drop injection no
    /// longer targets it; on failure the extent is discarded (its pages released) and
    /// counted in `discardedPages` until it is pinned again or freed.
    func repin(_ token: ExtentToken, discarded: Bool, discardingContent: Bool = false) -> Result<PinReport, VolatileMemoryError> {
        state.withLock { $0.forget(token, accountedAs: discarded ? .discarded : .volatile) }
        let result: Result<PinReport, VolatileMemoryError>
        if case .failure(let error) = debugUnprotect(token) {
            result = .failure(error)
        } else if discarded {
            result = prepareFresh(token).map { .fresh }
        } else if discardingContent {
            discard(token)
            result = prepareFresh(token).map { .fresh }
        } else {
            switch detection.mechanism {
            case .userfaultfd: result = pinUserfaultfd(token)
            case .canary: result = pinCanary(token)
            }
        }
        switch result {
        case .success(let report):
            state.withLock { state in
                state.counters.pinnedPages += token.pageCount
                switch report {
                case .fresh: state.counters.freshPins += 1
                case .intact: state.counters.intactPins += 1
                case .dropped(let pages):
                    state.counters.droppedPins += 1
                    state.counters.droppedPagesDetected += pages.count
                }
            }
        case .failure:
            discard(token)
            debugProtect(token)
            state.withLock { state in
                state.counters.discardedPages += token.pageCount
                state.counters.pinFailures += 1
            }
        }
        return result
    }

    /// Makes a pinned extent volatile.
    func unpin(_ token: ExtentToken) {
        if case .canary = detection.mechanism {
            let region = token.region.takeUnretainedValue()
            let saved = region.savedWords! + token.firstPage
            var page = token.base
            for index in 0..<token.pageCount {
                // load/storeBytes: the user's bytes are not bound to UInt64.
                saved[index] = page.load(as: UInt64.self)
                page.storeBytes(of: cookie, as: UInt64.self)
                page += pageSize
            }
        }
        let result = Syscall.advise(token.base, byteCount: token.pageCount * pageSize, vc_madv_free())
        debugProtect(token)  // after the canary writes
        state.withLock { state in
            state.counters.pinnedPages -= token.pageCount
            state.counters.volatilePages += token.pageCount
            state.counters.unpins += 1
            state.volatileExtents[token.key] = token.pageCount
            if case .failure = result { state.counters.unpinFailures += 1 }
        }
    }

    /// Maps and dirties every page of a new or discarded extent, so the caller's first
    /// writes take no fault: with userfaultfd, UFFDIO_ZEROPAGE over the whole range first
    /// (one call) so that populating never goes through the handler thread.
    func prepareFresh(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        if let userfaultfd {
            let mapped = userfaultfd.mapZeroPages(token.base, byteCount: token.pageCount * pageSize, pageSize: pageSize)
            if case .failure = mapped { return mapped }
        }
        return populateForgettingDrops(token)
    }

    /// Re-populates a recycled extent, whose content does not matter: pages the kernel took
    /// meanwhile are mapped (zero page) in batches without being recorded as drops.
    func prepareRecycled(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        if case .failure(let error) = mapAbsentPages(token, recordingDrops: false) { return .failure(error) }
        return populateForgettingDrops(token)
    }

    /// Populates an extent whose content does not matter, then clears its drop bits: the
    /// pages it found missing (and stray faults recorded while it was free) are no news.
    private func populateForgettingDrops(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        let result = populate(token)
        token.region.takeUnretainedValue().takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
        return result
    }

    /// userfaultfd pin: pre-check, one populate, then collect the recorded drops.
    func pinUserfaultfd(_ token: ExtentToken) -> Result<PinReport, VolatileMemoryError> {
        let region = token.region.takeUnretainedValue()
        if configuration.usesResidencyPrecheck {
            if case .failure(let error) = mapAbsentPages(token, recordingDrops: true) { return .failure(error) }
        }
        if case .failure(let error) = populate(token) { return .failure(error) }
        var dropped: [Int] = []
        region.takeDropped(first: token.firstPage, count: token.pageCount) { dropped.append($0) }
        return .success(dropped.isEmpty ? .intact : .dropped(pages: dropped))
    }

    /// Canary pin: compare-and-swap each page's cookie back to its saved word.
    func pinCanary(_ token: ExtentToken) -> Result<PinReport, VolatileMemoryError> {
        let region = token.region.takeUnretainedValue()
        // Populate first only when pages are missing: it turns the allocation failure of a
        // refault into ENOMEM instead of an OOM kill, and a dropped page then reads zero,
        // which the swap below still detects. Intact pages need no allocation.
        if configuration.usesResidencyPrecheck, residentPageCount(token) < token.pageCount {
            if case .failure(let error) = populate(token) { return .failure(error) }
        }
        let saved = region.savedWords! + token.firstPage
        var dropped: [Int] = []
        var page = token.base
        let cookie = self.cookie
        for index in 0..<token.pageCount {
            if vc_atomic_cas_u64(page, cookie, saved[index]) == 0 {
                dropped.append(index)
            }
            page += pageSize
        }
        return .success(dropped.isEmpty ? .intact : .dropped(pages: dropped))
    }

    /// Whether pins and fresh extents are re-dirtied by per-page user-mode writes instead of
    /// `MADV_POPULATE_WRITE`. The cache turns this on while its memory cgroup can swap.
    ///
    /// Why (issue 9): with swap allowed, a cache whose ordinary memory exceeded its cgroup's
    /// limit was OOM-killed within a second, where the same workload re-dirtying in user mode
    /// swapped and survived. The kernel's OOM report blamed a charge in `do_wp_page` under
    /// `faultin_page_range` (our populate), with `active_anon` 128 MiB, `inactive_anon` 0 and
    /// 1.8 MiB of 512 MiB swap used. The charge and OOM path (`try_charge_memcg`) is the same
    /// for user and kernel faults; what differs is that the populate's `get_user_pages` runs
    /// with `FOLL_TOUCH`, which marks every page it walks accessed (`folio_mark_accessed`):
    /// pages re-pinned twice are promoted to the active list, so memcg reclaim at the limit
    /// finds no inactive anonymous page to swap within its retries. A user-mode write only
    /// sets the page-table accessed bit. (That mechanism is our reading of mm/gup.c and
    /// mm/swap.c, consistent with the report; the survival with user-mode writes is measured.)
    /// Without swap, anonymous memory cannot be reclaimed anyway: the populate (4 to 5 times
    /// faster) stays the default. A missing page met by the user-mode write faults to the
    /// userfaultfd handler (no `UFFD_FEATURE_SIGBUS` is asked for), so this never raises SIGBUS.
    ///
    /// While it is on (swap is usable), freed extents are not kept warm: dirty pages must be
    /// written to swap to be reclaimed, where lazily freed ones are simply dropped, and in a
    /// tight cgroup those megabytes were enough to tip a run into an OOM kill.
    package var redirtiesInUserMode: Bool {
        get { userModeRedirty.load(ordering: .relaxed) }
        set {
            let wasOn = userModeRedirty.exchange(newValue, ordering: .relaxed)
            if newValue && !wasOn { coolWarmRecycledExtents() }
        }
    }

    /// Re-dirties every page. With `UFFD_USER_MODE_ONLY`, `MADV_POPULATE_WRITE` stops with
    /// EFAULT at a dropped page (pages before it were re-dirtied, pages after it were not):
    /// the absent pages are then recorded and mapped, and the call repeated until it succeeds.
    func populate(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        let byteCount = token.pageCount * pageSize
        #if VOLATILE_INTERNAL_CHECKS
        if injectedPopulateFailures.fire() { return .failure(.outOfMemory) }
        #endif
        switch userModeRedirty.load(ordering: .relaxed) ? .atomicTouch(reason: "swap") : populateMethod {
        case .atomicTouch:
            // A user-mode write: an absent page faults to the userfaultfd handler (which records
            // it) or, without userfaultfd, is allocated zero-filled (which the canary detects).
            var page = token.base
            for _ in 0..<token.pageCount {
                vc_atomic_touch(page)
                page += pageSize
            }
            return .success(())
        case .populateWrite:
            var fruitless = 0
            var round = 0
            while true {
                switch Syscall.advise(token.base, byteCount: byteCount, vc_madv_populate_write()) {
                case .success:
                    return .success(())
                case .failure(let error) where error == .noMemory:
                    return .failure(.outOfMemory)
                case .failure(let error) where error == .badAddress && userfaultfd?.mode == .userModeOnly:
                    round += 1
                    populateRaceHook.withLock { $0 }?(.afterFault(round: round))
                    switch mapAbsentPages(token, recordingDrops: true) {
                    case .success(let found):
                        // Terminates: pages before the one that stopped the call are dirty now
                        // and stay, and that page is mapped here, so each round gets further.
                        // EFAULT with nothing absent is not a drop: give up after a few.
                        fruitless = found == 0 ? fruitless + 1 : 0
                        if fruitless > 16 { return .failure(.systemCall("madvise(MADV_POPULATE_WRITE)", error)) }
                        populateRaceHook.withLock { $0 }?(.beforeRetry(round: round))
                    case .failure(let mapError):
                        return .failure(mapError)
                    }
                case .failure(let error):
                    return .failure(.systemCall("madvise(MADV_POPULATE_WRITE)", error))
                }
            }
        }
    }

    /// Finds pages without a page-table entry and maps the zero page there, in one
    /// UFFDIO_ZEROPAGE per run. When `recordingDrops`, the pages it maps are recorded in the
    /// drop bitmap (an absent page of a volatile extent was dropped), and a mincore failure
    /// is an error: guessing would report intact pages as dropped. Otherwise (the content
    /// does not matter) a mincore failure maps the whole range, skipping present pages.
    /// - Returns: How many absent pages were found; 0 without userfaultfd.
    func mapAbsentPages(_ token: ExtentToken, recordingDrops: Bool) -> Result<Int, VolatileMemoryError> {
        guard let userfaultfd else { return .success(0) }
        let region = token.region.takeUnretainedValue()
        let scanned = withResidency(token) { (vector) -> Result<Int, VolatileMemoryError> in
            var found = 0
            var index = 0
            let count = token.pageCount
            while index < count {
                if vector[index] & 1 != 0 { index += 1; continue }
                let runStart = index
                while index < count && vector[index] & 1 == 0 { index += 1 }
                // Only pages that really were absent count as dropped: mincore can report a
                // page absent while reclaim has unmapped it and then puts it back (it failed
                // to free it), and that page keeps its content. The zero-page ioctl tells them
                // apart: it refuses (EEXIST) a page that is present again.
                var presentAgain: [Int] = []
                let mapped = userfaultfd.mapZeroPages(
                    token.base + runStart * pageSize, byteCount: (index - runStart) * pageSize, pageSize: pageSize
                ) { address in presentAgain.append((address - token.base) / pageSize) }
                if recordingDrops {
                    for page in runStart..<index where !presentAgain.contains(page) {
                        region.markDropped(page: token.firstPage + page)
                    }
                }
                found += index - runStart - presentAgain.count
                if case .failure(let error) = mapped { return .failure(error) }
            }
            return .success(found)
        }
        switch scanned {
        case .success(let result):
            return result
        case .failure(let error) where recordingDrops:
            return .failure(.systemCall("mincore", error))
        case .failure:
            return userfaultfd.mapZeroPages(token.base, byteCount: token.pageCount * pageSize, pageSize: pageSize)
                .map { token.pageCount }
        }
    }

    /// Releases a failed pin's pages so that nothing is half alive: the extent is discarded.
    func discard(_ token: ExtentToken) {
        releasePages(token.base, pageCount: token.pageCount)
        token.region.takeUnretainedValue().takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
    }

    /// Gives pages back to the kernel, so that they read as zeros (and have no page-table
    /// entry). `MADV_DONTNEED` refuses mlock'ed pages (EINVAL; a caller may lock a pinned
    /// extent): unlock and retry, and as a last resort write the zeros, so that a later
    /// zero-filled allocation or fresh pin of the range never sees stale bytes.
    func releasePages(_ base: UnsafeMutableRawPointer, pageCount: Int) {
        let byteCount = pageCount * pageSize
        if case .success = Syscall.advise(base, byteCount: byteCount, vc_madv_dontneed()) { return }
        _ = Syscall.unlock(base, byteCount: byteCount)
        if case .success = Syscall.advise(base, byteCount: byteCount, vc_madv_dontneed()) { return }
        _ = Syscall.protect(base, byteCount: byteCount, PROT_READ | PROT_WRITE)  // the debug trap may have protected it
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// Resident pages of an extent, from mincore; 0 if mincore fails (callers read 0 as
    /// "nothing known to be left", which costs regeneration work, never correctness).
    func residentPageCount(_ token: ExtentToken) -> Int {
        residentPageCount(token.base, pageCount: token.pageCount)
    }

    /// Resident pages of a range, from mincore; 0 if mincore fails.
    func residentPageCount(_ base: UnsafeMutableRawPointer, pageCount: Int) -> Int {
        let counted = withResidency(base, pageCount: pageCount) { vector in
            var resident = 0
            for index in 0..<pageCount { resident &+= Int(vector[index] & 1) }
            return resident
        }
        if case .success(let resident) = counted { return resident }
        return 0
    }

    /// Calls `body` with mincore's vector for the extent (one byte per page, bit 0 set
    /// when resident), or returns mincore's error.
    func withResidency<R>(_ token: ExtentToken, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> Result<R, Errno> {
        withResidency(token.base, pageCount: token.pageCount, body)
    }

    /// Calls `body` with mincore's vector for `pageCount` pages from `base`, or returns its error.
    func withResidency<R>(
        _ base: UnsafeMutableRawPointer, pageCount: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R
    ) -> Result<R, Errno> {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: pageCount) { vector in
            switch Syscall.residency(base, byteCount: pageCount * pageSize, into: vector.baseAddress!) {
            case .success: return .success(body(UnsafeBufferPointer(vector)))
            case .failure(let error): return .failure(error)
            }
        }
    }
}
