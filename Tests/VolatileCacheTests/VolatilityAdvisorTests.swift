import Testing
import VolatileCache

private let MiB = 1 << 20
private let GiB = 1 << 30

private func meminfo(swapTotalKiB: Int, swapFreeKiB: Int) -> String {
    """
    MemTotal:       24684328 kB
    MemFree:        20612900 kB
    SwapCached:            0 kB
    SwapTotal:      \(swapTotalKiB) kB
    SwapFree:       \(swapFreeKiB) kB
    Zswap:                 0 kB
    """
}

@Suite("Swap environment parsing")
struct SwapEnvironmentTests {
    @Test func noSwapIsNotUsable() {
        let environment = SwapEnvironment.parse(meminfo: meminfo(swapTotalKiB: 0, swapFreeKiB: 0), swappiness: "60\n", cgroup: .none)
        #expect(!environment.isUsable)
        #expect(environment.headroomBytes == 0)
    }

    @Test func machineSwapWithUnlimitedV1Cgroup() {
        let environment = SwapEnvironment.parse(
            meminfo: meminfo(swapTotalKiB: 4 << 20, swapFreeKiB: 3 << 20), swappiness: "60\n",
            cgroup: .v1(limit: "268435456\n", memswLimit: "9223372036854771712\n", usage: "100000000\n", memswUsage: "150000000\n", swappiness: "60\n"))
        #expect(environment.isUsable)
        #expect(environment.swapTotalBytes == 4 * GiB)
        #expect(environment.cgroupSwapLimitBytes == nil)
        #expect(environment.cgroupSwapUsageBytes == 50_000_000)
        #expect(environment.headroomBytes == 3 * GiB)
    }

    @Test func v1MemswEqualToTheLimitForbidsSwap() {
        let environment = SwapEnvironment.parse(
            meminfo: meminfo(swapTotalKiB: 4 << 20, swapFreeKiB: 4 << 20), swappiness: "60",
            cgroup: .v1(limit: "268435456", memswLimit: "268435456", usage: "1000", memswUsage: "1000", swappiness: "60"))
        #expect(environment.cgroupSwapLimitBytes == 0)
        #expect(!environment.isUsable)
    }

    @Test func v1SwapLimitBoundsTheHeadroom() {
        let environment = SwapEnvironment.parse(
            meminfo: meminfo(swapTotalKiB: 4 << 20, swapFreeKiB: 4 << 20), swappiness: "60",
            cgroup: .v1(limit: "\(256 * MiB)", memswLimit: "\(256 * MiB + GiB)", usage: "\(200 * MiB)", memswUsage: "\(456 * MiB)", swappiness: "60"))
        #expect(environment.cgroupSwapLimitBytes == GiB)
        #expect(environment.cgroupSwapUsageBytes == 256 * MiB)
        #expect(environment.headroomBytes == 768 * MiB)
    }

    @Test func v2SwapMax() {
        let machine = meminfo(swapTotalKiB: 4 << 20, swapFreeKiB: 4 << 20)
        let unlimited = SwapEnvironment.parse(meminfo: machine, swappiness: "60", cgroup: .v2(swapMax: "max\n", swapCurrent: "0\n"))
        #expect(unlimited.isUsable && unlimited.cgroupSwapLimitBytes == nil && unlimited.headroomBytes == 4 * GiB)
        let forbidden = SwapEnvironment.parse(meminfo: machine, swappiness: "60", cgroup: .v2(swapMax: "0\n", swapCurrent: "0\n"))
        #expect(!forbidden.isUsable)
        let bounded = SwapEnvironment.parse(meminfo: machine, swappiness: "60", cgroup: .v2(swapMax: "\(GiB)\n", swapCurrent: "\(100 * MiB)\n"))
        #expect(bounded.isUsable && bounded.headroomBytes == GiB - 100 * MiB)
    }

    @Test func swappinessZeroCountsAsNoSwap() {
        let machine = meminfo(swapTotalKiB: 4 << 20, swapFreeKiB: 4 << 20)
        #expect(!SwapEnvironment.parse(meminfo: machine, swappiness: "0\n", cgroup: .none).isUsable)
        // v1's per-cgroup swappiness overrides the global one, both ways.
        let cgroupZero = SwapEnvironment.parse(
            meminfo: machine, swappiness: "60",
            cgroup: .v1(limit: "\(256 * MiB)", memswLimit: "9223372036854771712", usage: "0", memswUsage: "0", swappiness: "0"))
        #expect(!cgroupZero.isUsable)
        let cgroupSixty = SwapEnvironment.parse(
            meminfo: machine, swappiness: "0",
            cgroup: .v1(limit: "\(256 * MiB)", memswLimit: "9223372036854771712", usage: "0", memswUsage: "0", swappiness: "60"))
        #expect(cgroupSixty.isUsable)
    }

    @Test func currentReadsInjectedFiles() {
        let files = ["/proc/meminfo": meminfo(swapTotalKiB: 1 << 20, swapFreeKiB: 1 << 19), "/proc/sys/vm/swappiness": "30\n"]
        let environment = SwapEnvironment.current { path in files[path] }
        #expect(environment.swapTotalBytes == GiB)
        #expect(environment.swapFreeBytes == GiB / 2)
        #expect(environment.swappiness == 30)
    }
}

@Suite("Volatility advisor")
struct VolatilityAdvisorTests {
    /// 4 GiB of free swap, no cgroup limit.
    static let zram = SwapEnvironment(swapTotalBytes: 4 * GiB, swapFreeBytes: 4 * GiB, swappiness: 60)
    /// A decode: 10 ns per byte (a 1.5 MiB image in about 16 ms).
    static let decode = RegenerationCost(nanosecondsPerByte: 10)

    static func advisor(_ policy: Volatility = .automatic, environment: SwapEnvironment = zram, swapIn: Double? = 0.5) -> VolatilityAdvisor {
        var advisor = VolatilityAdvisor(policy: policy, environment: environment)
        if let swapIn {
            // 256 pages of 4 KiB brought back at `swapIn` ns per byte.
            advisor.recordSwapIn(nanoseconds: UInt64(swapIn * Double(256 * 4096)), majorFaults: 256, pageSize: 4096)
        }
        return advisor
    }

    @Test func cheapSwapKeepsEntriesSwappable() {
        var advisor = Self.advisor()
        #expect(advisor.decide(bytes: 2 * MiB, regeneration: Self.decode) == .swappable)
        #expect(advisor.statistics.swappableDecisions == 1)
        #expect(advisor.statistics.swapInNanosecondsPerByte == 0.5)
    }

    @Test func swapCostlierThanRegenerationMakesThemVolatile() {
        var advisor = Self.advisor(swapIn: 30)
        #expect(advisor.decide(bytes: 2 * MiB, regeneration: Self.decode) == .volatile(.swapCostlier))
        // The margin: 9 ns per byte of swap-in is cheaper than 10, but not by 1.25x.
        var close = Self.advisor(swapIn: 9)
        #expect(close.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapCostlier))
        close.margin = 1
        #expect(close.decide(bytes: MiB, regeneration: Self.decode) == .swappable)
    }

    @Test func swapOutCostCountsToo() {
        var advisor = Self.advisor(swapIn: 4)
        #expect(advisor.decide(bytes: MiB, regeneration: Self.decode) == .swappable)
        advisor.recordCalibration(.init(swappedOutBytes: MiB, swapOutNanoseconds: UInt64(5 * MiB), swappedInBytes: MiB, swapInNanoseconds: UInt64(4 * MiB), majorFaults: 256))
        // Round trip 4 + 5 = 9 ns per byte: not 1.25x cheaper than 10.
        #expect(advisor.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapCostlier))
    }

    @Test func unknownSwapCostIsExploredWithinABudget() {
        var advisor = Self.advisor(swapIn: nil)
        #expect(advisor.explorationBytes == 16 * MiB)
        for _ in 0..<4 {
            #expect(advisor.decide(bytes: 4 * MiB, regeneration: Self.decode) == .swappable)
            advisor.didMakeSwappable(bytes: 4 * MiB)
        }
        #expect(advisor.decide(bytes: 4 * MiB, regeneration: Self.decode) == .volatile(.swapCostUnknown))
        // Once a re-pin measured it, the costs decide.
        advisor.recordSwapIn(nanoseconds: 4096 * 256, majorFaults: 256, pageSize: 4096)
        #expect(advisor.swapInsObserved == 1)
        #expect(advisor.decide(bytes: 4 * MiB, regeneration: Self.decode) == .swappable)
    }

    @Test func unknownCostsKeepTodaysBehaviour() {
        var noSwapCost = Self.advisor(swapIn: nil)
        noSwapCost.explorationBytes = 0
        #expect(noSwapCost.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapCostUnknown))
        var noRegeneration = Self.advisor()
        #expect(noRegeneration.decide(bytes: MiB, regeneration: RegenerationCost()) == .volatile(.regenerationCostUnknown))
        // Re-pins without major faults say nothing about swap.
        noSwapCost.recordSwapIn(nanoseconds: 1_000_000, majorFaults: 0, pageSize: 4096)
        #expect(noSwapCost.swapInsObserved == 0)
        #expect(noSwapCost.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapCostUnknown))
    }

    @Test func noUsableSwapMeansVolatile() {
        var none = Self.advisor(environment: .none)
        #expect(none.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapUnusable))
        var swappinessZero = Self.advisor(environment: SwapEnvironment(swapTotalBytes: 4 * GiB, swapFreeBytes: 4 * GiB, swappiness: 0))
        #expect(swappinessZero.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.swapUnusable))
        // Even a swappable hint cannot make swap appear.
        #expect(none.decide(bytes: MiB, regeneration: Self.decode, hint: .swappable) == .volatile(.swapUnusable))
    }

    @Test func policiesAndHints() {
        var always = Self.advisor(.always)
        #expect(always.decide(bytes: MiB, regeneration: Self.decode, hint: .swappable) == .volatile(.configuredAlways))
        var automatic = Self.advisor()
        #expect(automatic.decide(bytes: MiB, regeneration: Self.decode, hint: .volatile) == .volatile(.hintedVolatile))
        // A swappable hint skips the cost comparison (costly or impossible to regenerate).
        var unknown = Self.advisor(swapIn: nil)
        #expect(unknown.decide(bytes: MiB, regeneration: RegenerationCost(), hint: .swappable) == .swappable)
        var never = Self.advisor(.never, environment: .none)
        #expect(never.decide(bytes: MiB, regeneration: Self.decode) == .swappable)
        #expect(never.decide(bytes: MiB, regeneration: Self.decode, hint: .volatile) == .volatile(.hintedVolatile))
    }

    @Test func swappableBytesStayWithinTheHeadroom() {
        // 1 GiB of headroom: capacity 1 GiB - reserve (1/8) = 896 MiB.
        var advisor = Self.advisor(environment: SwapEnvironment(swapTotalBytes: GiB, swapFreeBytes: GiB, swappiness: 60))
        #expect(advisor.swapCapacityBytes == 896 * MiB)
        var kept = 0
        while case .swappable = advisor.decide(bytes: 64 * MiB, regeneration: Self.decode) {
            advisor.didMakeSwappable(bytes: 64 * MiB)
            kept += 64 * MiB
        }
        #expect(kept == 896 * MiB)
        #expect(advisor.decide(bytes: 64 * MiB, regeneration: Self.decode) == .volatile(.noHeadroom))
        // An entry leaving the swappable set makes room again.
        advisor.didStopBeingSwappable(bytes: 64 * MiB)
        #expect(advisor.decide(bytes: 64 * MiB, regeneration: Self.decode) == .swappable)
    }

    @Test func shrinkingHeadroomMakesSwappableBytesVolatileFirst() {
        var advisor = Self.advisor()
        advisor.reserveBytes = 64 * MiB
        advisor.didMakeSwappable(bytes: 512 * MiB)
        #expect(advisor.bytesToMakeVolatile == 0)
        // A neighbour filled the swap: 256 MiB free, of which the cgroup (the cache) uses 128 MiB.
        advisor.refresh(SwapEnvironment(swapTotalBytes: 4 * GiB, swapFreeBytes: 256 * MiB, swappiness: 60, cgroupSwapUsageBytes: 128 * MiB))
        #expect(advisor.swapCapacityBytes == 256 * MiB + 128 * MiB - 64 * MiB)
        #expect(advisor.bytesToMakeVolatile == 512 * MiB - 320 * MiB)
        #expect(advisor.decide(bytes: MiB, regeneration: Self.decode) == .volatile(.noHeadroom))
    }

    @Test func pressureSwapCannotAbsorbMakesThemVolatile() {
        var advisor = Self.advisor()
        advisor.didMakeSwappable(bytes: 300 * MiB)
        #expect(advisor.bytesToMakeVolatile(onPressure: .low) == 0)
        #expect(advisor.bytesToMakeVolatile(onPressure: .medium) == 0)
        #expect(advisor.bytesToMakeVolatile(onPressure: .critical) == 300 * MiB)
        // Swap turned off while entries were swappable: all of them, at any level.
        advisor.refresh(.none)
        #expect(advisor.bytesToMakeVolatile(onPressure: .low) == 300 * MiB)
        var never = Self.advisor(.never)
        never.didMakeSwappable(bytes: 300 * MiB)
        #expect(never.bytesToMakeVolatile(onPressure: .critical) == 0)
    }

    @Test func costEstimatesAreWeightedMeans() {
        var cost = CostPerByte()
        #expect(cost.nanosecondsPerByte == nil)
        cost.add(nanoseconds: 1000, bytes: 100)  // 10
        cost.add(nanoseconds: 2000, bytes: 100)  // 20: 10 + 0.25 * 10
        #expect(cost.nanosecondsPerByte == 12.5)
        #expect(cost.samples == 2 && cost.bytes == 200)
        cost.add(nanoseconds: 5, bytes: 0)
        #expect(cost.samples == 2)
    }

    @Test func configurationDefaultsToAutomatic() {
        #expect(VolatileCache<Int>.Configuration().volatility == .automatic)
    }

    @Test func calibrationMeasuresSwapOnlyWhenThereIsSwap() throws {
        let environment = SwapEnvironment.current()
        let sample = try #require(SwapCalibration.measure(byteCount: 2 * MiB))
        if environment.isUsable && environment.headroomBytes > 64 * MiB {
            // Faults on pages still in the swap cache are minor, so only the way out is certain.
            #expect(sample.swappedOutBytes > 0, "MADV_PAGEOUT sent nothing to usable swap: \(environment)")
        } else {
            // Without swap, anonymous pages cannot leave memory: nothing to bring back.
            #expect(sample.swappedOutBytes == 0)
            #expect(sample.swappedInBytes == 0)
        }
    }
}
