import Testing
@testable import VolatileCache

/// The adaptive policy's W-TinyLFU segments in the cache (`VolatileCache+Segments.swift`):
/// window, candidates, probation and protected, driven by lock-free hits through the read
/// buffers only.
@Suite("Segmented adaptive policy")
struct SegmentedPolicyTests {
    /// One shard, so that segment order is one FIFO per segment and the test can reason about
    /// which entry is at the front.
    func makeSegmentedCache(countLimit: Int, shardCount: Int = 1, costLimit: Int? = nil) throws -> VolatileCache<Int> {
        var configuration = VolatileCache<Int>.Configuration(totalCostLimit: costLimit, countLimit: countLimit)
        configuration.policy = .adaptive
        configuration.shardCount = shardCount
        configuration.arena.regionByteCount = 16 << 20
        configuration.arena.minimumRegionByteCount = 16 << 20
        return try VolatileCache<Int>(configuration: configuration)
    }

    /// Fills a cache of 20 entries, then one more: the window spills into probation unjudged
    /// (0 is evicted: the oldest, nothing else competes). Keys 1 and 2 are then hit (lock-free:
    /// they reach the policy only through the read-buffer drain). The next newcomer's eviction
    /// promotes them to protected, and TinyLFU turns the cold newcomer away: it is no more
    /// frequent than the oldest probation entry, 3, which stays.
    @Test func probationHitsArePromotedAndAColdCandidateIsRejected() throws {
        let cache = try makeSegmentedCache(countLimit: 20)
        for key in 0..<20 { #expect(try read(cache, key, byteCount: page)) }
        #expect(cache.segmentKeys.window.count == 20, "nothing moves before the cache is full")
        #expect(try read(cache, 100, byteCount: page))
        #expect(!cache.contains(0))
        #expect(cache.segmentKeys.probation == Array(1..<20) + [100])
        for _ in 0..<2 {
            #expect(try read(cache, 1, byteCount: page))
            #expect(try read(cache, 2, byteCount: page))
        }
        #expect(try read(cache, 101, byteCount: page))
        let segments = cache.segmentKeys
        #expect(segments.protected == [1, 2], "probation entries accessed again are promoted")
        #expect(!cache.contains(101), "a cold candidate must not displace an incumbent as frequent")
        #expect(cache.contains(3))
        #expect(segments.probation.first == 3)
        #expect(cache.count == 20)
        #expect(cache.statistics.evictions == 2)
    }

    /// A newcomer that keeps coming back is admitted: every miss counts in the sketch, so it
    /// soon beats the oldest probation entry (accessed once), which is evicted instead.
    @Test func aFrequentCandidateIsAdmitted() throws {
        let cache = try makeSegmentedCache(countLimit: 20)
        for key in 0..<21 { #expect(try read(cache, key, byteCount: page)) }
        var attempts = 0
        while !cache.contains(200), attempts < 6 {
            #expect(try read(cache, 200, byteCount: page))
            attempts += 1
        }
        #expect(cache.contains(200), "admitted after \(attempts) accesses")
        #expect(attempts >= 2, "the first access alone is not enough (it ties with the victim)")
        #expect(cache.segmentKeys.probation.last == 200)
        #expect(!cache.contains(1), "the oldest probation entry was the victim")
    }

    /// Scan resistance at the segment level: 16 keys hit often, then a one-time sweep of 2,000
    /// new keys through 48 entries (16 shards). Every frequent key survives the sweep, most of
    /// them in protected, and no sweep key gets there.
    @Test func aSweepLeavesProtectedAlone() throws {
        let cache = try makeSegmentedCache(countLimit: 48, shardCount: 16)
        let frequent = Array(0..<16)
        for key in 100..<148 { #expect(try read(cache, key, byteCount: page)) }
        for _ in 0..<20 {
            for key in frequent { #expect(try read(cache, key, byteCount: page)) }
        }
        for key in 1_000..<3_000 { #expect(try read(cache, key, byteCount: page)) }
        #expect(cache.count <= 48)
        #expect(frequent.allSatisfy { cache.contains($0) }, "kept \(frequent.filter { cache.contains($0) })")
        let protected = Set(cache.segmentKeys.protected)
        // A frequent key admitted in the last warm-up rounds may not have been accessed since
        // (it waits in probation), so not quite all of them.
        #expect(protected.intersection(frequent).count >= 12, "protected: \(protected.sorted()), segments: \(cache.segmentKeys)")
        #expect(protected.allSatisfy { $0 < 1_000 }, "no sweep key was ever accessed twice")
        for key in frequent { #expect(try read(cache, key, byteCount: page)) }
    }

    /// Under a cost limit the segments weigh cost: a candidate must be worth more per unit of
    /// cost than the victims it displaces together. An expensive newcomer (cost 10) accessed
    /// as often as the cheap incumbents (cost 1) is worth less per unit and is turned away.
    @Test func costWeighsAdmission() throws {
        let cache = try makeSegmentedCache(countLimit: 1_000, costLimit: 40)
        func insert(_ key: Int, cost: Int) throws {
            try cache.withBytes(forKey: key, regenerate: { context in
                try context.write(byteCount: page, cost: cost) { buffer in
                    buffer.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: key))
                    return page
                }
            }) { #expect($0.first == UInt8(truncatingIfNeeded: key)) }
        }
        for key in 0..<40 { try insert(key, cost: 1) }
        try insert(40, cost: 1)  // fills: the window spills into probation
        // One more access each: the shard's sketch grew (and forgot its counts) while it filled.
        for key in 0..<41 where cache.contains(key) { try insert(key, cost: 1) }
        for _ in 0..<3 { try insert(500, cost: 10) }
        #expect(!cache.contains(500), "3 accesses for 10 units of cost lose to ten 1-unit entries accessed once each")
        #expect(cache.count == 40)
    }
}
