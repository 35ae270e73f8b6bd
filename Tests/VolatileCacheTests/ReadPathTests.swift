#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VolatileCache
import VolatileCacheTesting
import VolatileMemory

/// The lock-free read path: grace periods and a long mixed stress that verifies every byte.
///
/// The stress runs `VOLATILE_READPATH_STRESS_SECONDS` seconds per strategy (default 2, so
/// `swift test` stays quick in CI; the issue's 20 s run is
/// `VOLATILE_READPATH_STRESS_SECONDS=20 swift test --filter ReadPathTests`).
@Suite("Lock-free read path")
struct ReadPathTests {
    /// A body still running on one thread while another sheds, drops every volatile page,
    /// removes everything and allocates again keeps reading intact bytes: the demotion and
    /// the free wait for the reader's grace period. The memory is freed once the body returns.
    @Test func aRunningBodyKeepsIntactBytesWhileAnotherThreadShedsAndFrees() throws {
        let cache = try makeCache(hot: 64 * page)
        let size = 8 * page
        try cache.insert(forKey: 1, byteCount: size) { fill($0, seed: 1) }
        let inside = Atomic(false)
        let otherDone = Atomic(false)
        let intactReads = Atomic(0)
        let brokenReads = Atomic(0)
        let extentsWhileReading = Atomic(-1)
        let shedBytes = Atomic(-1)
        runThreads(2) { thread in
            if thread == 0 {
                // The reader: a lock-free hot hit whose body outlives the other thread's work.
                _ = try? cache.withBytes(forKey: 1) { bytes in
                    inside.store(true, ordering: .releasing)
                    repeat {
                        if bytes.count == size && verify(bytes, seed: 1) {
                            intactReads.add(1, ordering: .relaxed)
                        } else {
                            brokenReads.add(1, ordering: .relaxed)
                        }
                    } while !otherDone.load(ordering: .acquiring)
                    // Once more after everything else has happened.
                    if verify(bytes, seed: 1) {
                        intactReads.add(1, ordering: .relaxed)
                    } else {
                        brokenReads.add(1, ordering: .relaxed)
                    }
                }
            } else {
                while !inside.load(ordering: .acquiring) { sched_yield() }
                shedBytes.store(cache.shed(), ordering: .relaxed)
                // Were the pages volatile now, this would zero them.
                _ = try? cache.arena.dropAllVolatilePages()
                cache.removeAll()
                // Allocations that would reuse a freed extent, written with other content.
                for key in 2..<10 { try? cache.insert(forKey: key, byteCount: size) { fill($0, seed: UInt64(key)) } }
                extentsWhileReading.store(cache.arena.statistics.extentCount, ordering: .relaxed)
                usleep(20_000)
                otherDone.store(true, ordering: .releasing)
            }
        }
        #expect(brokenReads.load(ordering: .relaxed) == 0)
        #expect(intactReads.load(ordering: .relaxed) >= 2)
        // The shed claimed the entry (it is not hot any more) but its unpin waited.
        #expect(shedBytes.load(ordering: .relaxed) == size)
        // Key 1's extent was still allocated beside the 8 new ones while the body ran.
        #expect(extentsWhileReading.load(ordering: .relaxed) == 9)
        // The body returned: its grace period is over and the extent was freed.
        #expect(!cache.contains(1))
        #expect(cache.arena.statistics.extentCount == 8)
        #expect(cache.statistics.pinnedBytes == 0)
        for key in 2..<10 { #expect(try read(cache, key, byteCount: size)) }
    }

    /// A body that removes its own key and sheds from inside keeps its bytes, and nothing
    /// deadlocks (the writer never waits for a grace period, it parks the work).
    @Test func aBodyMayRemoveAndShedItsOwnKey() throws {
        let cache = try makeCache()
        try cache.insert(forKey: 7, byteCount: 3 * page) { fill($0, seed: 7) }
        let ok = try cache.withBytes(forKey: 7) { bytes in
            #expect(cache.removeValue(forKey: 7))
            cache.shed()
            try cache.insert(forKey: 8, byteCount: 3 * page) { fill($0, seed: 8) }
            #expect(cache.arena.statistics.extentCount == 2)
            return verify(bytes, seed: 7)
        }
        #expect(ok == true)
        #expect(cache.arena.statistics.extentCount == 1)
        #expect(try read(cache, 8, byteCount: 3 * page))
    }

    /// A demoted entry that a locked look-up finds before its grace period ends is revived
    /// (published again) instead of being unpinned.
    @Test func aDemotionWaitingForItsGracePeriodIsRevivedByAnAccess() throws {
        let cache = try makeCache()
        try cache.insert(forKey: 1, byteCount: page) { fill($0, seed: 1) }
        try cache.insert(forKey: 2, byteCount: page) { fill($0, seed: 2) }
        try cache.withBytes(forKey: 2) { _ in
            // Inside a read section: the shed's unpin of 1 is parked.
            cache.shed()
            #expect(cache.statistics.hotBytes == 0 && cache.volatileKeys.isEmpty)
            // The slow path finds 1 `demoting` and revives it.
            guard let pin = try cache.pinnedValue(forKey: 1) else {
                Issue.record("the demoting entry was not found")
                return
            }
            #expect(pin.withUnsafeBytes { verify($0, seed: 1) })
        }
        // 2's demotion ran when the section ended; 1 was revived and stays hot.
        #expect(cache.hotKeys == [1])
        #expect(cache.volatileKeys == [2])
        #expect(try read(cache, 1, byteCount: page) && read(cache, 2, byteCount: page))
    }

    /// Grace periods are per cache: a body reading one cache does not hold back another
    /// cache's demotions, but a section nested across caches holds back both.
    @Test func aBodyInOneCacheDoesNotDelayAnotherCachesDemotions() throws {
        let first = try makeCache()
        let second = try makeCache()
        try first.insert(forKey: 1, byteCount: page) { fill($0, seed: 1) }
        try second.insert(forKey: 2, byteCount: page) { fill($0, seed: 2) }
        try second.insert(forKey: 3, byteCount: page) { fill($0, seed: 3) }
        try first.withBytes(forKey: 1) { _ in
            second.shed()
            #expect(second.volatileKeys.sorted() == [2, 3])
            try second.insert(forKey: 4, byteCount: page) { fill($0, seed: 4) }
            try second.withBytes(forKey: 4) { bytes in
                // Nested across caches: this section counts for `second` too.
                second.shed()
                #expect(!second.volatileKeys.contains(4))
                #expect(verify(bytes, seed: 4))
            }
        }
        #expect(second.volatileKeys.sorted() == [2, 3, 4])
    }

    /// More reading threads than read-buffer stripes: every thread gets a stripe (spread by
    /// the fewest live threads), threads on a shared stripe know it and bump its tail with an
    /// atomic add, so no hot hit is lost from the statistics. (The stripe was once picked from
    /// the slot's registration index, so threads that came after seven others all shared the
    /// last stripe.)
    @Test func threadsBeyondTheStripeCountShareStripesWithExactHitCounts() throws {
        let cache = try makeCache(shardCount: 1)
        for key in 0..<64 { try cache.insert(forKey: key, byteCount: 64) { fill($0, seed: UInt64(key)) } }
        let threads = 3 * ReadBuffers.stripeCount - 4, hitsPerThread = 20_000
        let registered = Atomic<Int>(0), finished = Atomic<Int>(0), corrupt = Atomic<Int>(0)
        let stripes = Mutex<[(stripe: Int, exclusive: Bool)]>([])
        let before = cache.statistics.hotHits
        var handles: [pthread_t] = []
        for thread in 0..<threads {
            let handle = try startThread {
                // The first hit registers this thread's epoch slot and gives it a stripe.
                _ = try? cache.withBytes(forKey: thread % 64) { _ in }
                registered.add(1, ordering: .sequentiallyConsistent)
                while registered.load(ordering: .sequentiallyConsistent) < threads { sched_yield() }
                for index in 0..<hitsPerThread {
                    let key = (index &* 31 &+ thread) % 64
                    let intact = (try? cache.withBytes(forKey: key) { verify($0, seed: UInt64(key)) }) ?? false
                    if !intact { corrupt.add(1, ordering: .relaxed) }
                }
                let slot = ReadEpochs.enter(cache: ReadEpochs.anyCache)
                let mine = (slot.address.pointee.stripe, slot.address.pointee.stripeIsExclusive.load(ordering: .relaxed))
                ReadEpochs.exit(slot)
                stripes.withLock { $0.append(mine) }
                // Stay alive (and on the stripe) until every thread has read its own.
                finished.add(1, ordering: .sequentiallyConsistent)
                while finished.load(ordering: .sequentiallyConsistent) < threads { sched_yield() }
            }.get()
            handles.append(handle)
        }
        for handle in handles { pthread_join(handle, nil) }
        #expect(corrupt.load(ordering: .relaxed) == 0)
        // Every hit of every thread counted, though some shared a stripe.
        #expect(cache.statistics.hotHits - before == threads * (hitsPerThread + 1))
        let seen = stripes.withLock { $0 }
        #expect(seen.count == threads)
        var users: [Int: Int] = [:]
        for entry in seen { users[entry.stripe, default: 0] += 1 }
        // Spread over the stripes rather than piled on one (other tests' threads may hold
        // some stripes meanwhile, so not necessarily all of them).
        #expect(users.count >= ReadBuffers.stripeCount / 2, "\(users)")
        // A thread that thinks it is alone on its stripe is alone among these threads.
        for entry in seen where entry.exclusive { #expect(users[entry.stripe] == 1, "\(seen)") }
    }

    /// The drains' recency window skips re-stamping an entry that one of the shard's last
    /// drain writes stamped (its stamp is already among the newest). An entry whose stamp
    /// came from its install, not from a drain, is outside every window: lock-free hits on
    /// the oldest entry must still move it off the demotion end, and a window of the hot
    /// list's eighth must not reorder the oldest entries.
    @Test func lockFreeHitsOnTheOldestEntriesStillSaveThemThroughTheRecencyWindow() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cache = try makeCache(hot: 64 * page, shardCount: 1)
        for key in 0..<64 { try read(cache, key, byteCount: page) }
        // Lock-free hits (64 of them fill a lap of this thread's stripe and drain it) on the
        // four oldest, in reverse order: 3, 2, 1, 0 become the newest, 0 last.
        for key in [3, 2, 1, 0] {
            for _ in 0..<64 { #expect(try cache.withBytes(forKey: key) { verify($0, seed: UInt64(key)) } == true) }
        }
        // Hit 0 again: it is inside the window now (stamped by the last drain write), so it
        // keeps its stamp, which is still the newest.
        for _ in 0..<64 { _ = try cache.withBytes(forKey: 0) { $0[0] } }
        // Twelve new entries demote the twelve least recently used: 4...15, none of the hit ones.
        for key in 64..<76 { try read(cache, key, byteCount: page) }
        #expect(Set(cache.volatileKeys) == Set(4..<16))
        #expect(Set(cache.hotKeys).isSuperset(of: [0, 1, 2, 3]))
    }

    /// The drain's recency window itself, on a read buffer of its own: an entry a drain has
    /// never stamped is stamped (wherever the shard's counter stands); one stamped within the
    /// shard's last `window` drain writes keeps its stamp; once `window` other entries have
    /// been stamped after it, its next hit stamps it again; a window of 0 stamps every hit.
    @Test func aDrainSkipsEntriesAmongItsLastWritesAndStampsTheRest() {
        let buffers = ReadBuffers.allocate()
        defer { ReadBuffers.deallocate(buffers) }
        let epochCell = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
        epochCell.initialize(to: Atomic(1))
        defer { epochCell.deinitialize(count: 1); epochCell.deallocate() }
        let cells = UnsafeMutablePointer<EntryRecency>.allocate(capacity: 10)
        cells.initialize(repeating: EntryRecency(isHotListed: true), count: 10)
        defer { cells.deinitialize(count: 10); cells.deallocate() }
        var recency = ShardRecency()
        func drain(_ hits: [Int], window: UInt32) {
            for (position, cell) in hits.enumerated() {
                ReadBuffers.slot(buffers, stripe: 0, index: position).pointee.store(UInt(bitPattern: cells + cell), ordering: .relaxed)
            }
            recency.drain(buffers, stripes: 0...0, everything: true, epoch: EpochPointer(epochCell), window: window)
        }
        drain([0], window: 4)
        let first = cells[0].stamp
        #expect(first > 0, "an entry no drain had stamped is outside every window")
        drain([0], window: 4)
        #expect(cells[0].stamp == first, "stamped by the last drain write: skipped")
        drain([1, 2, 3], window: 4)
        drain([0], window: 4)
        #expect(cells[0].stamp == first, "three writes later it is still among the last four")
        drain([4], window: 4)
        drain([0], window: 4)
        #expect(cells[0].stamp > cells[4].stamp, "four writes later its hit stamps it again")
        let before = cells[0].stamp
        drain([0], window: 0)
        #expect(cells[0].stamp > before, "a window of 0 stamps every hit")
    }

    /// A grace period whose barrier fails (`membarrier(2)` returns an error: the fault hook of
    /// internal-checks builds) is not started: the demotions it guards stay parked, nothing is
    /// unpinned under a reader, and a later collection (here, the next read section's exit)
    /// starts it again and runs them. Every byte stays intact throughout.
    @Test(.enabled(if: VolatileArena.internalChecksEnabled && ReadEpochs.writersBarrierEveryThread))
    func aFailedBarrierParksTheWorkUntilALaterCollectionStartsItAgain() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let cache = try makeCache(hot: 64 * page, shardCount: 1)
        for key in 0..<4 { try read(cache, key, byteCount: page) }
        // The barrier is only needed while another thread has a live epoch slot: keep one.
        let registered = Atomic<Bool>(false), done = Atomic<Bool>(false)
        let other = try startThread {
            _ = try? cache.withBytes(forKey: 0) { _ in }
            registered.store(true, ordering: .sequentiallyConsistent)
            while !done.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        }.get()
        defer {
            done.store(true, ordering: .sequentiallyConsistent)
            pthread_join(other, nil)
        }
        while !registered.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        let unpinsBefore = cache.arena.statistics.unpins
        // Every barrier fails while the hook is set: each demotion's retire, and each
        // collection's attempt to start the parked periods again.
        ReadEpochs.injectBarrierFailures(count: 1_000)
        _ = cache.shed()
        #expect(cache.reclaimer.parkedCount.load(ordering: .relaxed) == 4)
        #expect(cache.arena.statistics.unpins == unpinsBefore, "unpinned without a grace period")
        #expect(cache.volatileKeys.isEmpty)
        // Hits still read intact bytes (the demoting entries are revived by a locked look-up).
        #expect(try cache.withBytes(forKey: 2) { verify($0, seed: 2) } == true)
        ReadEpochs.injectBarrierFailures(count: 0)
        // A miss enters and leaves a read section: the exit collects, the barriers succeed.
        #expect(try cache.withBytes(forKey: 99) { _ in true } == nil)
        #expect(cache.reclaimer.parkedCount.load(ordering: .relaxed) == 0)
        // Key 2 was revived before its period ended: its demotion does nothing.
        #expect(cache.arena.statistics.unpins == unpinsBefore + 3)
        #expect(Set(cache.volatileKeys) == [0, 1, 3])
        for key in 0..<4 { #expect(try read(cache, key, byteCount: page)) }
    }

    static var stressDuration: Duration {
        let seconds = getenv("VOLATILE_READPATH_STRESS_SECONDS").flatMap { Double(String(cString: $0)) } ?? 2
        return .milliseconds(Int(seconds * 1000))
    }

    /// Eight threads mixing hits, misses, removeValue, removeAll, shed, limit evictions,
    /// inserts and pins while a background injector drops volatile pages; every byte of every
    /// body is verified, at its start and at its end.
    @Test(arguments: [DropDetectionStrategy.automatic, .canary])
    func eightThreadsMixingEverythingVerifyEveryByte(strategy: DropDetectionStrategy) throws {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 48 * page, countLimit: 96)
        configuration.shardCount = 8
        configuration.arena.regionByteCount = 64 << 20
        configuration.arena.minimumRegionByteCount = 16 << 20
        configuration.arena.strategy = strategy
        let cache = try VolatileCache<Int>(configuration: configuration)
        let injector = BackgroundDropInjector(cache: cache, fraction: 0.3, interval: .milliseconds(2), seed: 11)
        try injector.start()
        let bad = Atomic(0)
        let reads = Atomic(0)
        let operations = Atomic(0)
        let deadline = ContinuousClock.now + Self.stressDuration
        @Sendable func size(_ key: Int) -> Int { (1 + key % 5) * page + 8 * (key % 3) }
        runThreads(8) { thread in
            var random = SplitMix64(seed: UInt64(thread) &+ 1000)
            // At least the duration, and at least enough operations to reach the count limit
            // (slow machines, sanitizers).
            while ContinuousClock.now < deadline || operations.load(ordering: .relaxed) < 6000 {
                // Zipf-like: most accesses on a few hot keys, some on a long tail (misses).
                let key = random.next() % 4 == 0 ? Int(random.next() % 160) : Int(random.next() % 24)
                let expected = size(key)
                operations.add(1, ordering: .relaxed)
                do {
                    switch random.next() % 100 {
                    case 0..<2: cache.removeValue(forKey: key)
                    case 2: if random.next() % 8 == 0 { cache.removeAll() }
                    case 3..<5: cache.shed()
                    case 5..<8: try cache.insert(forKey: key, byteCount: expected) { fill($0, seed: UInt64(key)) }
                    case 8..<12:
                        let pin = try cache.pinnedValue(forKey: key, regenerate: generator(expected))
                        let ok = pin.withUnsafeBytes { $0.count == expected && verify($0, seed: UInt64(key)) }
                        if !ok { Issue.record("pinnedValue read wrong bytes for \(key)"); bad.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    case 12..<20:
                        // No regenerator: a hit or nil.
                        let ok = try cache.withBytes(forKey: key) { $0.count == expected && verify($0, seed: UInt64(key)) }
                        if ok == false { Issue.record("hit without regenerator read wrong bytes for \(key)"); bad.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    default:
                        let ok = try cache.withBytes(forKey: key, regenerate: generator(expected)) { bytes in
                            let first = bytes.count == expected && verify(bytes, seed: UInt64(key))
                            // Let other threads shed and free meanwhile, then look again.
                            if random.next() % 16 == 0 { sched_yield() }
                            let second = verify(bytes, seed: UInt64(key))
                            if first != second { Issue.record("bytes of \(key) changed during the body") }
                            return first && second
                        }
                        if !ok { Issue.record("withBytes read wrong bytes for \(key)"); bad.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    }
                } catch {
                    Issue.record("operation failed: \(error)")
                    bad.add(1, ordering: .relaxed)
                }
            }
        }
        injector.stop()
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 1000)
        #expect(injector.rounds > 5)
        let statistics = cache.statistics
        #expect(statistics.hotHits > 0)
        #expect(statistics.misses > 0)
        #expect(statistics.evictions > 0)
        #expect(statistics.sheds > 0)
        // The count limit holds up to the entries that were waiting for a grace period (not
        // evictable then) when the last insertion enforced it: at most one per thread.
        #expect(statistics.entryCount <= 96 + 8)
        // Everything that was retired has run: removing the rest leaves no extent behind.
        cache.removeAll()
        #expect(cache.arena.statistics.extentCount == 0)
        #expect(cache.statistics.pinnedBytes == 0 && cache.count == 0)
        cache.arena.checkInvariants()
    }
}
