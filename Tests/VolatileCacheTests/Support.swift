#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VolatileCache
import VolatileMemory
@_exported import VolatileTestSupport
@_exported import VolatileSystem

/// Counts regenerations per test (regenerators are called with no lock held, from any thread).
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    func add(_ amount: Int) { value.add(amount, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

let page = 4096

/// A cache with small regions, canary-free automatic detection, and the given limits.
func makeCache(
    hot: Int = 64 << 20, countLimit: Int? = nil, costLimit: Int? = nil, maximumReservedBytes: Int? = nil,
    regionByteCount: Int = 64 << 20, shardCount: Int = 16
) throws -> VolatileCache<Int> {
    var configuration = VolatileCache<Int>.Configuration(
        hotByteLimit: hot, totalCostLimit: costLimit, countLimit: countLimit, maximumReservedBytes: maximumReservedBytes)
    configuration.shardCount = shardCount
    configuration.arena.regionByteCount = regionByteCount
    configuration.arena.minimumRegionByteCount = min(regionByteCount, 16 << 20)
    return try VolatileCache<Int>(configuration: configuration)
}

/// A regenerator writing `byteCount` bytes of the key's deterministic content.
func generator(_ byteCount: Int, counter: Counter? = nil) -> (inout RegenerationContext<Int>) throws -> Void {
    { context in
        counter?.increment()
        let seed = UInt64(context.key)
        try context.write(byteCount: byteCount) { buffer in
            fill(buffer, seed: seed)
            return buffer.count
        }
    }
}

/// Reads the key's bytes through the cache (regenerating if needed) and verifies them.
@discardableResult
func read(_ cache: VolatileCache<Int>, _ key: Int, byteCount: Int, counter: Counter? = nil) throws -> Bool {
    try cache.withBytes(forKey: key, regenerate: generator(byteCount, counter: counter)) { bytes in
        bytes.count == byteCount && verify(bytes, seed: UInt64(key))
    }
}

extension String {
    init(contentsOfFileAtPath path: String) throws {
        var bytes: [UInt8] = []
        guard let file = fopen(path, "r") else { throw VolatileCacheError.regeneratorProducedNothing }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// How long a timed stress loop runs: at least `minimum`, and then on until the work the test
/// asserts on is done (at most `cap`), so that a loaded machine makes the test slower instead
/// of failing it (issue 12: no flaky test).
struct StressDuration: Sendable {
    let start = ContinuousClock.now
    let minimum: Duration
    var cap: Duration = .seconds(60)

    /// Whether the loop goes on, given whether the asserted amount of work is done.
    func keepsGoing(workDone: Bool) -> Bool {
        let elapsed = start.duration(to: .now)
        return elapsed < minimum || (!workDone && elapsed < cap)
    }
}
