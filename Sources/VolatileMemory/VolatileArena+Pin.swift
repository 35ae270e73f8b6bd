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
    /// longer targets it; on failure the extent is discarded (its pages released).
    func repin(_ token: ExtentToken, discarded: Bool, discardingContent: Bool = false) -> Result<PinReport, VolatileMemoryError> {
        state.withLock { state in
            if discarded {
                state.counters.discardedPages -= token.pageCount
            } else {
                state.volatileExtents.removeValue(forKey: token.key)
                state.counters.volatilePages -= token.pageCount
            }
        }
        let result: Result<PinReport, VolatileMemoryError>
        if discarded {
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
                let word = page.assumingMemoryBound(to: UInt64.self)
                saved[index] = word.pointee
                word.pointee = cookie
                page += pageSize
            }
        }
        let result = Syscall.advise(token.base, byteCount: token.pageCount * pageSize, vc_madv_free())
        state.withLock { state in
            state.counters.pinnedPages -= token.pageCount
            state.counters.volatilePages += token.pageCount
            state.counters.unpins += 1
            state.volatileExtents[token.key] = token.pageCount
            if case .failure(let error) = result {
                state.counters.unpinFailures += 1
                state.counters.lastUnpinError = error
            }
        }
    }

    /// Maps and dirties every page of a new or discarded extent, so the caller's first
    /// writes take no fault: with userfaultfd, UFFDIO_ZEROPAGE over the whole range first
    /// (one call) so that populating never goes through the handler thread.
    func prepareFresh(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        let region = token.region.takeUnretainedValue()
        if let userfaultfd {
            if case .failure(let error) = userfaultfd.mapZeroPages(
                token.base, byteCount: token.pageCount * pageSize, pageSize: pageSize)
            {
                return .failure(error == .noMemory ? .outOfMemory : .systemCall("ioctl(UFFDIO_ZEROPAGE)", error))
            }
        }
        let result = populate(token)
        region.takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
        return result
    }

    /// Re-populates a recycled extent, whose content does not matter: pages the kernel took
    /// meanwhile are mapped (zero page) in batches without being recorded as drops.
    func prepareRecycled(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        let region = token.region.takeUnretainedValue()
        if let userfaultfd {
            let mapped = withResidency(token) { (vector) -> Result<Void, VolatileMemoryError> in
                var index = 0
                while index < token.pageCount {
                    if vector[index] & 1 != 0 { index += 1; continue }
                    let runStart = index
                    while index < token.pageCount && vector[index] & 1 == 0 { index += 1 }
                    let result = userfaultfd.mapZeroPages(
                        token.base + runStart * pageSize, byteCount: (index - runStart) * pageSize, pageSize: pageSize)
                    if case .failure(let error) = result {
                        return .failure(error == .noMemory ? .outOfMemory : .systemCall("ioctl(UFFDIO_ZEROPAGE)", error))
                    }
                }
                return .success(())
            }
            if case .failure(let error) = mapped { return .failure(error) }
        }
        let result = populate(token)
        region.takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
        return result
    }

    /// userfaultfd pin: pre-check, one populate, then collect the recorded drops.
    func pinUserfaultfd(_ token: ExtentToken) -> Result<PinReport, VolatileMemoryError> {
        let region = token.region.takeUnretainedValue()
        if configuration.usesResidencyPrecheck {
            if case .failure(let error) = mapAbsentPages(token) { return .failure(error) }
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
            if vc_atomic_cas_u64(page.assumingMemoryBound(to: UInt64.self), cookie, saved[index]) == 0 {
                dropped.append(index)
            }
            page += pageSize
        }
        return .success(dropped.isEmpty ? .intact : .dropped(pages: dropped))
    }

    /// Re-dirties every page. With `UFFD_USER_MODE_ONLY`, `MADV_POPULATE_WRITE` stops with
    /// EFAULT at a dropped page (pages before it were re-dirtied, pages after it were not):
    /// the absent pages are then recorded and mapped, and the call repeated until it succeeds.
    func populate(_ token: ExtentToken) -> Result<Void, VolatileMemoryError> {
        let byteCount = token.pageCount * pageSize
        if injectedPopulateFailures.load(ordering: .relaxed) > 0,
            injectedPopulateFailures.subtract(1, ordering: .relaxed).newValue >= 0
        {
            return .failure(.outOfMemory)
        }
        switch populateMethod {
        case .atomicTouch:
            // A user-mode write: an absent page faults to the userfaultfd handler (which records
            // it) or, without userfaultfd, is allocated zero-filled (which the canary detects).
            var page = token.base
            for _ in 0..<token.pageCount {
                vc_atomic_touch(page.assumingMemoryBound(to: UInt64.self))
                page += pageSize
            }
            return .success(())
        case .populateWrite:
            var fruitless = 0
            while true {
                switch Syscall.advise(token.base, byteCount: byteCount, vc_madv_populate_write()) {
                case .success:
                    return .success(())
                case .failure(let error) where error == .noMemory:
                    return .failure(.outOfMemory)
                case .failure(let error) where error == .badAddress && userfaultfd?.mode == .userModeOnly:
                    switch mapAbsentPages(token) {
                    case .success(let found):
                        // A page can be dropped after being mapped (reclaim of the zero page is
                        // impossible, but a racing free could be): bound the retries.
                        fruitless = found == 0 ? fruitless + 1 : 0
                        if fruitless > 16 { return .failure(.systemCall("madvise(MADV_POPULATE_WRITE)", error)) }
                    case .failure(let mapError):
                        return .failure(mapError)
                    }
                case .failure(let error):
                    return .failure(.systemCall("madvise(MADV_POPULATE_WRITE)", error))
                }
            }
        }
    }

    /// Finds pages without a page-table entry (dropped), records them in the drop bitmap and
    /// maps the zero page there in one call per run. Returns how many it found.
    @discardableResult
    func mapAbsentPages(_ token: ExtentToken) -> Result<Int, VolatileMemoryError> {
        guard let userfaultfd else { return .success(0) }
        let region = token.region.takeUnretainedValue()
        return withResidency(token) { (vector) -> Result<Int, VolatileMemoryError> in
            var found = 0
            var index = 0
            let count = token.pageCount
            while index < count {
                if vector[index] & 1 != 0 { index += 1; continue }
                let runStart = index
                while index < count && vector[index] & 1 == 0 {
                    region.markDropped(page: token.firstPage + index)
                    index += 1
                }
                found += index - runStart
                let result = userfaultfd.mapZeroPages(
                    token.base + runStart * pageSize, byteCount: (index - runStart) * pageSize, pageSize: pageSize)
                if case .failure(let error) = result {
                    return .failure(error == .noMemory ? .outOfMemory : .systemCall("ioctl(UFFDIO_ZEROPAGE)", error))
                }
            }
            return .success(found)
        }
    }

    /// Releases a failed pin's pages so that nothing is half alive: the extent is discarded.
    func discard(_ token: ExtentToken) {
        _ = Syscall.advise(token.base, byteCount: token.pageCount * pageSize, vc_madv_dontneed())
        token.region.takeUnretainedValue().takeDropped(first: token.firstPage, count: token.pageCount) { _ in }
    }

    /// Resident pages of an extent, from mincore.
    func residentPageCount(_ token: ExtentToken) -> Int {
        withResidency(token) { vector in
            var resident = 0
            for index in 0..<token.pageCount { resident &+= Int(vector[index] & 1) }
            return resident
        }
    }

    /// Calls `body` with mincore's vector for the extent (all zero if mincore fails).
    func withResidency<R>(_ token: ExtentToken, _ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: token.pageCount) { vector in
            if case .failure = Syscall.residency(token.base, byteCount: token.pageCount * pageSize, into: vector.baseAddress!) {
                vector.initialize(repeating: 0)
            }
            return body(vector)
        }
    }
}
