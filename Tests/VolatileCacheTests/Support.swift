#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VolatileCache
import VolatileMemory

/// Deterministic content: word `index` of object `seed`. Never zero, so a dropped page
/// (which reads as zeros) can never pass verification.
@inline(__always)
func expectedWord(seed: UInt64, index: Int) -> UInt64 {
    var z = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
    return (z ^ (z >> 29)) | 1
}

/// Fills words `words` (all by default) of `bytes` with the content of `seed`.
func fill(_ bytes: UnsafeMutableRawBufferPointer, seed: UInt64, words: Range<Int>? = nil) {
    let pointer = bytes.baseAddress!.assumingMemoryBound(to: UInt64.self)
    for index in words ?? 0..<(bytes.count / 8) { pointer[index] = expectedWord(seed: seed, index: index) }
}

/// True when every word of `bytes` is the content of `seed`.
func verify(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> Bool {
    let pointer = bytes.baseAddress!.assumingMemoryBound(to: UInt64.self)
    for index in 0..<(bytes.count / 8) where pointer[index] != expectedWord(seed: seed, index: index) { return false }
    return true
}

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

/// Runs `body(index)` on `count` new threads at once (not a pool: all of them wait together).
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box: @unchecked Sendable {  // Immutable after creation.
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Box(body, index)).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            box.body(box.index)
            return nil
        }, context)
        precondition(status == 0)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
