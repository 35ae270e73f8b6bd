// The decision core of cost-aware volatility. Pure bookkeeping and arithmetic: the cache feeds
// it the swap environment, timings and byte counts, and asks it what to do; it reads no files and
// makes no system calls, so tests drive it with injected costs and swap states.
//
// Where it plugs into the cache (`VolatileCache+Volatility.swift`):
//   - demotion (`finishDemotion`, once the grace period is over): `demotionKind(for:)` asks
//     `decide(bytes:regeneration:hint:)`; `.volatile` unpins as before, `.swappable` keeps the
//     entry's ordinary memory in the volatile list (`isSwappable`) and calls `didMakeSwappable`;
//   - a swappable entry leaving that state (hit, eviction, made volatile) calls
//     `didStopBeingSwappable(bytes:)`; a hit reads one word a page, timed with
//     `MajorFaultMeter`, and reports it through `recordSwapIn(nanoseconds:majorFaults:pageSize:)`;
//   - every full regeneration updates the entry's `RegenerationCost`;
//   - about once a second (at demotions), and on every pressure event, `refresh(_:)` with
//     `SwapEnvironment.current()`, then `bytesToMakeVolatile` (headroom shrank) or
//     `bytesToMakeVolatile(onPressure:)`: the cache unpins that many swappable bytes, least
//     recently used first, before it sheds any hot entry.

/// What the advisor decided for an idle entry.
public enum VolatilityDecision: Sendable, Hashable {
    /// Keep it as ordinary memory; the kernel may swap it out.
    case swappable
    /// Make it volatile (`MADV_FREE`), for this reason.
    case volatile(VolatilityReason)
}

/// Why an entry was made volatile.
public enum VolatilityReason: Sendable, Hashable {
    /// The configuration says ``Volatility/always``.
    case configuredAlways
    /// The entry's hint says ``VolatilityHint/volatile``.
    case hintedVolatile
    /// No usable swap (none, swappiness 0, or a cgroup swap limit of 0).
    case swapUnusable
    /// Swap is usable but the swappable set would exceed its headroom (less the reserve).
    case noHeadroom
    /// The swap-in cost is not known yet (no calibration, no swap-in observed) and the
    /// exploration budget is spent.
    case swapCostUnknown
    /// The entry has never been regenerated, so its cost is unknown.
    case regenerationCostUnknown
    /// Swapping it out and back in costs more than regenerating it.
    case swapCostlier
}

/// A learned cost in nanoseconds per byte: an exponentially weighted mean of samples.
public struct CostPerByte: Sendable, Hashable {
    /// The estimate, or nil before the first sample.
    public private(set) var nanosecondsPerByte: Double?
    /// Samples taken.
    public private(set) var samples: Int = 0
    /// Bytes those samples covered.
    public private(set) var bytes: Int = 0

    /// Weight of a new sample once there is an estimate.
    static let weight = 0.25

    /// An empty estimate.
    public init() {}

    /// An estimate that starts at `nanosecondsPerByte` (one sample).
    public init(nanosecondsPerByte: Double) {
        add(nanoseconds: nanosecondsPerByte, bytes: 1)
    }

    /// Adds a sample of `nanoseconds` spent on `bytes` bytes (ignored when `bytes` is 0).
    public mutating func add(nanoseconds: Double, bytes: Int) {
        guard bytes > 0, nanoseconds >= 0 else { return }
        let sample = nanoseconds / Double(bytes)
        nanosecondsPerByte = nanosecondsPerByte.map { $0 + Self.weight * (sample - $0) } ?? sample
        samples += 1
        self.bytes += bytes
    }
}

/// An entry's regeneration cost, updated on each regeneration (8 bytes plus the count).
public typealias RegenerationCost = CostPerByte

/// Decides, for each idle entry beyond the hot budget, whether it becomes volatile or stays
/// swappable, and how many swappable bytes to make volatile when swap runs out.
///
/// A value type with no locking: the cache keeps one behind the lock that serialises demotion.
///
/// ```text
///                   swap usable, headroom, swap-in + swap-out < regeneration / margin
///  hot ──demote──▶ swappable (ordinary memory, the kernel may swap it)
///   │                 │ headroom shrinks, or pressure swap cannot absorb
///   └──demote──▶ volatile (MADV_FREE) ◀┘   dropped pages are regenerated on the next pin
/// ```
public struct VolatilityAdvisor: Sendable {
    /// The configured policy.
    public var policy: Volatility
    /// The swap environment last passed to ``refresh(_:)``.
    public private(set) var environment: SwapEnvironment
    /// Learned cost of bringing a byte back from swap (major faults on re-pins, or calibration).
    public private(set) var swapIn = CostPerByte()
    /// Learned cost of sending a byte to swap (calibration); 0 when unknown.
    public private(set) var swapOut = CostPerByte()
    /// Swap must be cheaper than regeneration by this factor (costs are noisy, and a swapped
    /// page also costs reclaim work the timings do not see). Default: 1.25.
    public var margin = 1.25
    /// Swap headroom the cache leaves to others and to bursts. Default: 64 MiB or an eighth of
    /// the headroom, whichever is larger.
    public var reserveBytes: Int?
    /// While the swap-in cost is unknown, up to this many bytes are kept swappable anyway so
    /// that re-pins can measure it (a swap file's cost cannot be calibrated: pages pushed out
    /// stay in the swap cache and come back as minor faults). Default: 16 MiB.
    public var explorationBytes = 16 << 20
    /// Bytes of entries kept swappable now.
    public private(set) var swappableBytes = 0
    /// Re-pins of swappable entries that took major faults.
    public private(set) var swapInsObserved = 0
    /// Decisions so far that kept the entry swappable.
    public private(set) var swappableDecisions = 0
    /// Decisions so far that made the entry volatile.
    public private(set) var volatileDecisions = 0

    /// Creates an advisor.
    /// - Parameters:
    ///   - policy: The configured policy.
    ///   - environment: The swap environment (``SwapEnvironment/current(read:)``).
    public init(policy: Volatility = .automatic, environment: SwapEnvironment = .none) {
        self.policy = policy
        self.environment = environment
    }

    // MARK: Inputs

    /// Takes a fresh reading of the swap environment.
    public mutating func refresh(_ environment: SwapEnvironment) {
        self.environment = environment
    }

    /// Records a timed re-pin of a swappable entry; only re-pins that took major faults count.
    ///
    /// - Parameters:
    ///   - nanoseconds: How long the re-pin took.
    ///   - majorFaults: Major faults the pinning thread took meanwhile (``MajorFaultMeter``).
    ///   - pageSize: The page size.
    public mutating func recordSwapIn(nanoseconds: UInt64, majorFaults: Int, pageSize: Int) {
        guard majorFaults > 0 else { return }
        swapInsObserved += 1
        swapIn.add(nanoseconds: Double(nanoseconds), bytes: majorFaults * pageSize)
    }

    /// Records a start-up calibration (``SwapCalibration/measure(byteCount:)``).
    public mutating func recordCalibration(_ sample: SwapCalibration.Sample) {
        guard sample.swappedInBytes > 0 else { return }
        swapIn.add(nanoseconds: Double(sample.swapInNanoseconds), bytes: sample.swappedInBytes)
        swapOut.add(nanoseconds: Double(sample.swapOutNanoseconds), bytes: sample.swappedOutBytes)
    }

    /// Bookkeeping: an entry of `bytes` was kept swappable.
    public mutating func didMakeSwappable(bytes: Int) { swappableBytes += bytes }

    /// Bookkeeping: a swappable entry of `bytes` was pinned, evicted or made volatile.
    public mutating func didStopBeingSwappable(bytes: Int) { swappableBytes = max(0, swappableBytes - bytes) }

    // MARK: Decisions

    /// The bytes the swappable set may occupy in swap: the headroom plus the cgroup's swap
    /// already in use (which includes the cache's own swapped entries), less the reserve.
    public var swapCapacityBytes: Int {
        guard environment.isUsable else { return 0 }
        let headroom = environment.headroomBytes
        let reserve = reserveBytes ?? max(64 << 20, headroom / 8)
        return max(0, headroom + (environment.cgroupSwapUsageBytes ?? 0) - reserve)
    }

    /// What an idle entry of `bytes` should become.
    /// - Parameters:
    ///   - bytes: The entry's size.
    ///   - regeneration: The entry's regeneration cost.
    ///   - hint: The entry's hint.
    /// - Returns: The decision (not recorded in ``swappableBytes``: call
    ///   ``didMakeSwappable(bytes:)`` once the entry is kept).
    public mutating func decide(bytes: Int, regeneration: RegenerationCost, hint: VolatilityHint = .automatic) -> VolatilityDecision {
        let decision = evaluate(bytes: bytes, regeneration: regeneration, hint: hint)
        if decision == .swappable { swappableDecisions += 1 } else { volatileDecisions += 1 }
        return decision
    }

    func evaluate(bytes: Int, regeneration: RegenerationCost, hint: VolatilityHint) -> VolatilityDecision {
        if policy == .always { return .volatile(.configuredAlways) }
        if hint == .volatile { return .volatile(.hintedVolatile) }
        if policy == .never { return .swappable }
        guard environment.isUsable else { return .volatile(.swapUnusable) }
        guard swappableBytes + bytes <= swapCapacityBytes else { return .volatile(.noHeadroom) }
        if hint == .swappable { return .swappable }
        guard let swapInCost = swapIn.nanosecondsPerByte else {
            return swappableBytes + bytes <= explorationBytes ? .swappable : .volatile(.swapCostUnknown)
        }
        guard let regenerationCost = regeneration.nanosecondsPerByte else { return .volatile(.regenerationCostUnknown) }
        let roundTrip = swapInCost + (swapOut.nanosecondsPerByte ?? 0)
        return roundTrip * margin < regenerationCost ? .swappable : .volatile(.swapCostlier)
    }

    /// Swappable bytes to make volatile now because the headroom shrank (another process
    /// took swap, or the cgroup's limit changed). Call after ``refresh(_:)``.
    public var bytesToMakeVolatile: Int {
        guard policy != .never else { return 0 }
        return max(0, swappableBytes - swapCapacityBytes)
    }

    /// Swappable bytes to make volatile for a pressure event, before any hot entry is shed.
    ///
    /// Swap absorbs low and medium pressure while the swappable set fits its capacity; at
    /// critical pressure (about to OOM-kill or thrash) every swappable entry becomes volatile,
    /// so the cache never holds more unreclaimable memory than the ``Volatility/always`` cache.
    /// Under ``Volatility/never``, 0.
    /// - Parameter level: The event's level.
    /// - Returns: Bytes to make volatile, least recently used first.
    public func bytesToMakeVolatile(onPressure level: MemoryPressureLevel) -> Int {
        guard policy != .never else { return 0 }
        if level >= .critical || !environment.isUsable { return swappableBytes }
        return bytesToMakeVolatile
    }

    // MARK: Statistics

    /// The figures for ``VolatileCache/Statistics``.
    public var statistics: VolatilityStatistics {
        VolatilityStatistics(
            policy: policy, environment: environment, swappableBytes: swappableBytes, swapInsObserved: swapInsObserved,
            swapInNanosecondsPerByte: swapIn.nanosecondsPerByte, swapOutNanosecondsPerByte: swapOut.nanosecondsPerByte,
            swappableDecisions: swappableDecisions, volatileDecisions: volatileDecisions)
    }
}

/// Volatility figures, planned as a `volatility` field of ``VolatileCache/Statistics``.
public struct VolatilityStatistics: Sendable, Hashable {
    /// The configured policy.
    public var policy: Volatility
    /// The swap environment at the last refresh.
    public var environment: SwapEnvironment
    /// Bytes of entries kept swappable.
    public var swappableBytes: Int
    /// Re-pins of swappable entries that took major faults.
    public var swapInsObserved: Int
    /// Hits on swappable entries (each swaps the entry back in if the kernel swapped it out).
    public var swappableHits: Int = 0
    /// Learned swap-in cost, nanoseconds per byte; nil before it is known.
    public var swapInNanosecondsPerByte: Double?
    /// Learned swap-out cost, nanoseconds per byte; nil before it is known.
    public var swapOutNanosecondsPerByte: Double?
    /// Demotions that kept the entry swappable.
    public var swappableDecisions: Int
    /// Demotions that made the entry volatile.
    public var volatileDecisions: Int
}
