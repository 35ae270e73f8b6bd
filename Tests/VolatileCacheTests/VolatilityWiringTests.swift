import Synchronization
import Testing
import VolatileCache

// Issue 9: the advisor wired into the cache, with injected swap states and costs (no real swap:
// "swappable" here is ordinary memory the kernel could swap; `SwapPressureTests` uses zram).

private let entryBytes = 64 << 10

/// Deterministic content of entry `key`, position `index`.
private func pattern(_ key: Int, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: key &* 131 &+ index &* 7 &+ index >> 9) }

private func isIntact(_ bytes: UnsafeRawBufferPointer, key: Int) -> Bool {
    bytes.count == entryBytes && bytes.indices.allSatisfy { bytes[$0] == pattern(key, $0) }
}

/// A cache whose hot set holds two entries, with the swap environment and swap-in cost injected.
private func makeCache(
    _ volatility: Volatility = .automatic, environment: SwapEnvironment, swapIn: Double?
) throws -> VolatileCache<Int> {
    var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 2 * entryBytes)
    configuration.volatility = volatility
    let cache = try VolatileCache<Int>(configuration: configuration)
    cache.injectSwapEnvironment(environment, swapInNanosecondsPerByte: swapIn)
    return cache
}

private let roomySwap = SwapEnvironment(swapTotalBytes: 4 << 30, swapFreeBytes: 4 << 30, swappiness: 60)

/// Fills `keys` through the regenerator, which takes `delay` (the regeneration cost the
/// cache learns: 3 ms for 64 KiB is about 45 ns per byte).
/// - Returns: How many regenerations ran.
@discardableResult
private func access(_ cache: VolatileCache<Int>, _ keys: some Sequence<Int>, delay: Duration = .milliseconds(3)) throws -> Int {
    let regenerations = Atomic<Int>(0)
    for key in keys {
        let intact = try cache.withBytes(forKey: key, regenerate: { context in
            regenerations.add(1, ordering: .relaxed)
            let start = ContinuousClock.now
            while ContinuousClock.now - start < delay {}  // a busy decode, not a sleep
            try context.write(byteCount: entryBytes) { buffer in
                for index in buffer.indices { buffer[index] = pattern(key, index) }
                return buffer.count
            }
        }) { bytes in isIntact(bytes, key: key) }
        #expect(intact, "key \(key)")
    }
    return regenerations.load(ordering: .relaxed)
}

/// Waits (up to 5 s) until the demotions' grace periods have run and `condition` holds.
private func eventually(_ cache: VolatileCache<Int>, _ condition: (VolatileCache<Int>.Statistics) -> Bool) async -> Bool {
    for _ in 0..<500 {
        if condition(cache.statistics) { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition(cache.statistics)
}

@Suite("Volatility wired into the cache (injected swap and costs)")
struct VolatilityWiringTests {
    @Test("cheap swap: idle entries stay swappable, come back intact without regeneration, and critical pressure makes them volatile")
    func cheapSwapKeepsEntriesSwappable() async throws {
        let cache = try makeCache(environment: roomySwap, swapIn: 1)
        #expect(try access(cache, 0..<8) == 8)
        let kept = await eventually(cache) { $0.volatility.swappableBytes == 6 * entryBytes }
        var figures = cache.statistics
        #expect(kept, "\(figures.volatility)")
        #expect(figures.volatility.swappableDecisions == 6)
        #expect(figures.volatility.volatileDecisions == 0)
        #expect(figures.volatileBytes == 0)
        #expect(figures.entryCount == 8)

        // The least recently used entries were kept swappable: a hit swaps them back in, intact,
        // with no regeneration and no re-pin.
        #expect(try access(cache, 0..<3) == 0)
        figures = cache.statistics
        #expect(figures.volatility.swappableHits == 3)
        #expect(figures.droppedObjects == 0)

        // Critical pressure: swap cannot absorb it, every swappable entry becomes volatile.
        _ = await eventually(cache) { $0.volatility.swappableBytes == 6 * entryBytes }
        cache.handleMemoryPressure(MemoryPressureEvent(level: .critical, source: .simulated, isSimulated: true))
        let madeVolatile = await eventually(cache) { $0.volatility.swappableBytes == 0 && $0.volatileBytes >= 6 * entryBytes }
        figures = cache.statistics
        #expect(madeVolatile, "\(figures)")

        // Volatile now: dropped pages are detected and regenerated, byte for byte.
        let volatileKeys = Array((0..<8).filter { cache.volatileKeys.contains($0) })
        #expect(volatileKeys.count >= 6)
        _ = try cache.dropVolatilePages(forKeys: volatileKeys)
        #expect(try access(cache, volatileKeys) == volatileKeys.count)
    }

    @Test("shrinking headroom makes the swappable entries volatile, least recently used first")
    func shrinkingHeadroom() async throws {
        let cache = try makeCache(environment: roomySwap, swapIn: 1)
        try access(cache, 0..<8)
        #expect(await eventually(cache) { $0.volatility.swappableBytes == 6 * entryBytes })
        // Capacity = headroom + cgroup swap in use - reserve: with a 64 MiB reserve and the
        // cgroup limit leaving 64 MiB + 2 entries, two entries' room is left.
        let tight = SwapEnvironment(
            swapTotalBytes: 4 << 30, swapFreeBytes: 4 << 30, swappiness: 60,
            cgroupSwapLimitBytes: (64 << 20) + 2 * entryBytes, cgroupSwapUsageBytes: 0)
        cache.injectSwapEnvironment(tight)
        let figures = cache.statistics
        #expect(figures.volatility.swappableBytes == 2 * entryBytes, "\(figures.volatility)")
        #expect(figures.volatileBytes == 4 * entryBytes)
        // The oldest went first: keys 0...3 are volatile, 4 and 5 still swappable.
        #expect(Set(cache.volatileKeys).isSuperset(of: [0, 1, 2, 3]))
    }

    @Test("no swap, costly swap, a volatile hint, or .always: idle entries become volatile",
          arguments: ["no swap", "costly swap", "hint", "always"])
    func volatileWhenSwapDoesNotPay(_ scenario: String) async throws {
        let cache: VolatileCache<Int>
        switch scenario {
        case "no swap": cache = try makeCache(environment: .none, swapIn: nil)
        case "costly swap": cache = try makeCache(environment: roomySwap, swapIn: 10_000)
        case "always": cache = try makeCache(.always, environment: roomySwap, swapIn: 1)
        default:
            // Swap-in cost unknown: without the hint, these would be kept swappable to explore.
            cache = try makeCache(environment: roomySwap, swapIn: nil)
        }
        if scenario == "hint" {
            for key in 0..<8 {
                try cache.insert(forKey: key, byteCount: entryBytes, volatility: .volatile) { buffer in
                    for index in buffer.indices { buffer[index] = pattern(key, index) }
                }
            }
        } else {
            try access(cache, 0..<8)
        }
        let allVolatile = await eventually(cache) { $0.volatileBytes == 6 * entryBytes }
        let figures = cache.statistics
        #expect(allVolatile, "\(figures)")
        #expect(figures.volatility.swappableBytes == 0)
        #expect(figures.volatility.swappableDecisions == 0)
        #expect(figures.volatility.volatileDecisions == 6)
    }

    @Test("a swappable hint keeps an entry swappable without a known regeneration cost; .never keeps all")
    func swappableHintAndNever() async throws {
        let hinted = try makeCache(environment: roomySwap, swapIn: 1)
        for key in 0..<8 {
            try hinted.insert(forKey: key, byteCount: entryBytes, volatility: key < 4 ? .swappable : .automatic) { buffer in
                for index in buffer.indices { buffer[index] = pattern(key, index) }
            }
        }
        // Inserted entries have no regeneration cost: only the hinted ones stay swappable.
        #expect(await eventually(hinted) { $0.volatility.swappableBytes == 4 * entryBytes && $0.volatileBytes == 2 * entryBytes })

        let never = try makeCache(.never, environment: .none, swapIn: nil)
        try access(never, 0..<8)
        #expect(await eventually(never) { $0.volatility.swappableBytes == 6 * entryBytes && $0.volatileBytes == 0 })
        // Evicting a swappable entry frees it and its bookkeeping.
        #expect(never.removeValue(forKey: 0))
        #expect(never.statistics.volatility.swappableBytes == 5 * entryBytes)
        #expect(try access(never, 1..<8) == 0)
    }
}
