import Synchronization
import VolatileMemory
import VolatileSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Cost-aware volatility (issue 9): what a demoted entry becomes. The demotion ORDER (which
// entry leaves the hot set) is the policy's business; the KIND is decided here, in one
// function, `demotionKind(for:)`, called where a demotion's grace period ends.
//
//   hot ──demote──▶ swappable: ordinary memory in the volatile list (`isSwappable`); the kernel
//    │              may swap it out. A hit swaps it back in (timed: the swap-in cost) and makes
//    │              it hot. Counts against the cost and count limits, not the hot budget.
//    └──demote──▶ volatile (MADV_FREE), as before.
//   swappable ──headroom shrank / pressure swap cannot absorb──▶ volatile, least recently used first.
//
// Lock order: a shard lock may be held while the advisor's lock is taken, never the reverse.

/// The cache's volatility state: the advisor (behind a lock) and its refresh schedule.
final class VolatilityState: Sendable {
    let advisor: LockedValue<VolatilityAdvisor>
    /// CLOCK_MONOTONIC nanoseconds of the last swap-environment reading.
    let lastRefresh = Atomic<Int>(0)
    /// Tests: the environment was injected; the kernel's files are no longer read.
    let environmentIsInjected = Atomic<Bool>(false)
    /// Whether the start-up swap calibration has been started (once per cache).
    let calibrationStarted = Atomic<Bool>(false)
    /// Swap-ins of swappable entries (hits on them), with or without major faults.
    let swappableHits = Atomic<Int>(0)

    init(policy: Volatility, environment: SwapEnvironment) {
        advisor = LockedValue(VolatilityAdvisor(policy: policy, environment: environment))
        lastRefresh.store(Self.now(), ordering: .relaxed)
    }

    static func now() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time.tv_sec * 1_000_000_000 + time.tv_nsec
    }
}

extension VolatileCache {
    /// Reads the swap environment at creation: sets the arena's re-dirty mode, seeds the advisor.
    static func makeVolatilityState(policy: Volatility, arena: VolatileArena) -> VolatilityState {
        let environment = SwapEnvironment.current()
        // The OOM fix (see `VolatileArena.redirtiesInUserMode`): whatever the policy, hot
        // memory beyond the cgroup limit must be able to swap.
        if environment.isUsable { arena.redirtiesInUserMode = true }
        return VolatilityState(policy: policy, environment: environment)
    }

    /// What a demoted (unpinned, idle) entry becomes: the one place that decides the kind.
    /// Called once the demotion's grace period is over, with the entry `busy` (only this
    /// thread reads its fields).
    func demotionKind(for entry: CacheEntry<Key>) -> VolatilityDecision {
        let state = volatilityState
        if configuration.volatility == .always {
            return state.advisor.withLock { $0.decide(bytes: entry.footprint, regeneration: entry.regenerationCost, hint: entry.volatilityHint) }
        }
        refreshVolatilityIfDue()
        calibrateSwapIfNeeded()
        return state.advisor.withLock { $0.decide(bytes: entry.footprint, regeneration: entry.regenerationCost, hint: entry.volatilityHint) }
    }

    /// About once a second: a fresh reading of the swap environment; swappable bytes beyond
    /// the (shrunken) headroom are made volatile.
    func refreshVolatilityIfDue(force: Bool = false) {
        let state = volatilityState
        let now = VolatilityState.now()
        let last = state.lastRefresh.load(ordering: .relaxed)
        guard !state.environmentIsInjected.load(ordering: .relaxed), force || now - last >= 1_000_000_000 else { return }
        guard state.lastRefresh.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        let environment = SwapEnvironment.current()
        if environment.isUsable != arena.redirtiesInUserMode { arena.redirtiesInUserMode = environment.isUsable }
        let excess = state.advisor.withLock { advisor in
            advisor.refresh(environment)
            return advisor.bytesToMakeVolatile
        }
        if excess > 0 { makeSwappableVolatile(bytes: excess) }
    }

    /// Measures the swap device once (a few milliseconds on zram, on a thread of its own):
    /// until then, and where it sees nothing (a swap file), re-pins teach the advisor.
    func calibrateSwapIfNeeded() {
        let state = volatilityState
        guard configuration.volatility == .automatic, !state.calibrationStarted.load(ordering: .relaxed),
            !state.environmentIsInjected.load(ordering: .relaxed)
        else { return }
        guard state.advisor.withLock({ $0.environment.isUsable && $0.swapIn.nanosecondsPerByte == nil }) else { return }
        guard state.calibrationStarted.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let advisor = state.advisor
        if case .success(let thread) = startThread({
            guard let sample = SwapCalibration.measure() else { return }
            advisor.withLock { $0.recordCalibration(sample) }
        }) {
            pthread_detach(thread)
        }
    }

    /// Handles a pressure event's share for swappable entries: the bytes swap cannot absorb
    /// are made volatile, before the hot set is shed.
    func makeSwappableVolatile(onPressure level: MemoryPressureLevel) {
        refreshVolatilityIfDue(force: true)
        let bytes = volatilityState.advisor.withLock { $0.bytesToMakeVolatile(onPressure: level) }
        if bytes > 0 { makeSwappableVolatile(bytes: bytes) }
    }

    /// Makes at least `bytes` of swappable entries volatile (`MADV_FREE`), least recently used first.
    /// - Returns: The bytes made volatile.
    /// - Complexity: O(volatile entries) per entry made volatile.
    @discardableResult
    func makeSwappableVolatile(bytes: Int) -> Int {
        var done = 0
        while done < bytes {
            var best: (shard: ShardPointer<Key>, entry: CacheEntry<Key>, stamp: UInt64)? = nil
            for index in shards.indices {
                let shard = shards[index]
                shard.pointee.state.withLock { state in
                    var cursor = state.volatile.oldest
                    while let entry = cursor, !entry.isSwappable { cursor = entry.newer }
                    if let entry = cursor, best == nil || entry.listedStamp < best!.stamp { best = (shard, entry, entry.listedStamp) }
                }
            }
            guard let best else { break }
            let entry = best.entry
            let flight = Flight()
            let taken: PinnedExtent? = best.shard.pointee.state.withLock { state in
                guard entry.phase == .volatile, entry.isSwappable, !entry.isRemoved else { return nil }
                return entry.claimSwappable(flight: flight, in: &state)
            }
            guard let extent = taken else { continue }
            let footprint = entry.footprint
            volatileStateDidStopBeingSwappable(footprint: footprint)
            var volatile: VolatileExtent? = extent.unpin()
            var garbage = Garbage()
            best.shard.pointee.state.withLock { state in
                if entry.isRemoved {
                    entry.flight = nil
                    garbage.add(volatile.take()!)
                    return
                }
                entry.finishUnpin(volatile.take()!, in: &state)
                markEvictionFloorStale(best.shard)
                totals.volatileBytes.add(footprint, ordering: .relaxed)
            }
            dispose(&garbage)
            flight.finish(.ready)
            done += footprint
        }
        return done
    }

    /// Bookkeeping for a swappable entry that stopped being one (hit, eviction, made volatile).
    func volatileStateDidStopBeingSwappable(footprint: Int) {
        volatilityState.advisor.withLock { $0.didStopBeingSwappable(bytes: footprint) }
    }

    /// Swaps a swappable entry back in (a hit on it): reads one word per page, timing it and
    /// counting the thread's major faults, which teach the advisor the swap-in cost. The
    /// memory stays ordinary (it was never volatile), so nothing can have been dropped.
    func swapIn(_ extent: borrowing PinnedExtent) {
        let faultsBefore = MajorFaultMeter.current()
        let start = VolatilityState.now()
        let base = UnsafeRawPointer(extent.baseAddress)
        let pageSize = extent.pageSize
        var sum: UInt64 = 0
        for page in 0..<extent.pageCount {
            sum &+= UInt64(base.load(fromByteOffset: page * pageSize, as: UInt8.self))
        }
        withExtendedLifetime(sum) {}
        let elapsed = VolatilityState.now() - start
        let faults = MajorFaultMeter.current() - faultsBefore
        volatilityState.swappableHits.add(1, ordering: .relaxed)
        volatileStateDidStopBeingSwappable(footprint: extent.pageCount * pageSize)
        volatilityState.advisor.withLock {
            $0.recordSwapIn(nanoseconds: UInt64(max(0, elapsed)), majorFaults: faults, pageSize: pageSize)
        }
    }

    /// Tests: replaces the swap environment (the kernel's files are no longer read, and no
    /// calibration runs) and optionally seeds the learned swap-in cost; then makes volatile the
    /// swappable bytes the new environment has no room for, as a periodic refresh would.
    package func injectSwapEnvironment(_ environment: SwapEnvironment, swapInNanosecondsPerByte: Double? = nil) {
        volatilityState.environmentIsInjected.store(true, ordering: .relaxed)
        let excess = volatilityState.advisor.withLock { advisor in
            advisor.refresh(environment)
            if let cost = swapInNanosecondsPerByte {
                advisor.recordSwapIn(nanoseconds: UInt64(cost * 4096), majorFaults: 1, pageSize: 4096)
            }
            return advisor.bytesToMakeVolatile
        }
        if excess > 0 { makeSwappableVolatile(bytes: excess) }
    }

    /// The volatility figures now (``Statistics/volatility``).
    var volatilityStatistics: VolatilityStatistics {
        var figures = volatilityState.advisor.withLock { $0.statistics }
        figures.swappableHits = volatilityState.swappableHits.load(ordering: .relaxed)
        return figures
    }
}
