#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VolatileSystem
import Testing
@testable import VolatileCache
import VolatileMemory

@Suite("Pin, remove and evict protocol")
struct PinProtocolTests {
    /// An evicted pinned entry leaves the cache at once, but its memory stays valid and
    /// counted as pinned until the pin ends; then it is freed.
    @Test func evictingAPinnedEntryDefersTheFreeToTheLastRelease() throws {
        let cache = try makeCache(countLimit: 1)
        let pin = try cache.pinnedValue(forKey: 1, regenerate: generator(2 * page))
        let second = try cache.pinnedValue(forKey: 1, regenerate: generator(2 * page))
        #expect(try read(cache, 2, byteCount: page))  // over the count limit: 1 is evicted
        #expect(!cache.contains(1) && cache.contains(2))
        #expect(cache.statistics.evictions == 1)
        #expect(cache.arena.statistics.extentCount == 2)
        #expect(cache.statistics.pinnedBytes == 2 * page)
        _ = consume second
        #expect(cache.arena.statistics.extentCount == 2)
        #expect(pin.withUnsafeBytes { verify($0, seed: 1) })
        #expect(cache.statistics.pinnedBytes == 2 * page)
        _ = consume pin
        #expect(cache.arena.statistics.extentCount == 1)
        #expect(cache.statistics.pinnedBytes == 0)
        #expect(cache.statistics.entryCount == 1 && cache.count == 1)
    }

    /// A key removed while its regeneration runs: the caller still gets the bytes, nothing
    /// is cached, and the memory is freed when the caller's body returns.
    @Test func removalDuringRegenerationServesTheCallerAndCachesNothing() throws {
        let cache = try makeCache()
        let ok = try cache.withBytes(forKey: 4, regenerate: { context in
            #expect(cache.removeValue(forKey: 4))  // the loading entry
            #expect(!cache.removeValue(forKey: 4))
            try generator(3 * page)(&context)
        }) { bytes in
            verify(bytes, seed: 4) && cache.statistics.pinnedBytes == 3 * page
        }
        #expect(ok)
        #expect(!cache.contains(4))
        #expect(cache.arena.statistics.extentCount == 0)
        #expect(cache.statistics.pinnedBytes == 0 && cache.statistics.hotBytes == 0)
        #expect(cache.count == 0)
    }

    /// Readers racing an `insert` of the same key find either the old or the new object,
    /// never a half-inserted entry (between the insert's two locks the entry is loading).
    @Test func readersRacingInsertsSeeWholeObjects() throws {
        let cache = try makeCache(hot: 8 * page)
        let bad = Atomic(0)
        let reads = Atomic(0)
        let duration = StressDuration(minimum: .milliseconds(500))
        runThreads(4) { thread in
            while duration.keepsGoing(workDone: reads.load(ordering: .relaxed) > 100) {
                let key = thread % 2
                do {
                    if thread < 2 {
                        try cache.insert(forKey: key, byteCount: 2 * page) { fill($0, seed: UInt64(key)) }
                    } else if let pin = try cache.pinnedValue(forKey: key) {
                        if !pin.withUnsafeBytes({ verify($0, seed: UInt64(key)) }) { bad.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    } else if let ok = try cache.withBytes(forKey: key, { verify($0, seed: UInt64(key)) }) {
                        if !ok { bad.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    }
                } catch {
                    bad.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > minimumWork(100))
        #expect(cache.count == 2)
        cache.removeAll()
        #expect(cache.arena.statistics.extentCount == 0)
    }

    /// Concurrent starts leave exactly one monitor running: the one the cache keeps.
    @Test func concurrentPressureMonitorStartsKeepOneRunning() throws {
        let cache = try makeCache()
        let started = LockedValue<[MemoryPressureMonitor]>([])
        runThreads(4) { _ in
            for _ in 0..<5 {
                if let monitor = try? cache.startPressureMonitoring(source: .simulated) {
                    started.withLock { $0.append(monitor) }
                }
            }
        }
        let monitors = started.withLock { $0 }
        #expect(monitors.count == 20)
        let running = monitors.filter(\.isRunning)
        #expect(running.count == 1)
        #expect(running.first === cache.pressureMonitor)
        cache.stopPressureMonitoring()
        #expect(monitors.allSatisfy { !$0.isRunning })
    }
}
