import Testing
@testable import VolatileCache

/// `Configuration.policy`: the adaptive policy wired into the cache (frequency from the read
/// buffers, eviction, demotion order, resident capacity) against LRU on the same workload.
@Suite("Adaptive policy")
struct AdaptivePolicyTests {
    static let frequent = Array(0..<16)
    static let size = 2 * page

    func makePolicyCache(_ policy: CachePolicy, hot: Int = 64 << 20, countLimit: Int? = nil) throws -> VolatileCache<Int> {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: hot, countLimit: countLimit)
        configuration.policy = policy
        configuration.arena.regionByteCount = 16 << 20
        configuration.arena.minimumRegionByteCount = 16 << 20
        return try VolatileCache<Int>(configuration: configuration)
    }

    /// Makes the frequent keys frequent: 24 lock-free hits each (they reach the sketch through
    /// the read buffers' drains, never from the hit path itself).
    func warm(_ cache: VolatileCache<Int>) throws {
        for round in 0..<25 {
            for key in Self.frequent {
                #expect(try read(cache, key, byteCount: Self.size), "round \(round) key \(key)")
            }
        }
    }

    /// A one-time sweep of 1,000 new keys through a cache of 48 entries: LRU loses every
    /// frequent key, the adaptive policy keeps all of them (with intact content).
    @Test(arguments: [CachePolicy.lru, .adaptive])
    func oneTimeSweepDoesNotFlushFrequentKeys(policy: CachePolicy) throws {
        let cache = try makePolicyCache(policy, countLimit: 48)
        try warm(cache)
        for key in 100..<132 { #expect(try read(cache, key, byteCount: Self.size)) }
        for key in 1_000..<2_000 { #expect(try read(cache, key, byteCount: Self.size)) }
        #expect(cache.count <= 48)
        let kept = Self.frequent.filter { cache.contains($0) }
        for key in kept {
            let intact = try cache.withBytes(forKey: key) { verify($0, seed: UInt64(key)) && $0.count == Self.size }
            #expect(intact == true, "key \(key)")
        }
        switch policy {
        case .lru: #expect(kept.isEmpty, "LRU kept \(kept)")
        case .adaptive: #expect(kept.count == Self.frequent.count, "adaptive kept only \(kept)")
        }
    }

    /// Demotion order: with a hot set of 24 entries, a stream of one-time keys demotes the
    /// frequent keys first under LRU (they are the oldest), last under the adaptive policy.
    @Test(arguments: [CachePolicy.lru, .adaptive])
    func demotionKeepsFrequentKeysHot(policy: CachePolicy) throws {
        let cache = try makePolicyCache(policy, hot: 24 * Self.size)
        try warm(cache)
        for key in 100..<200 { #expect(try read(cache, key, byteCount: Self.size)) }
        let hot = Set(cache.hotKeys)
        let frequentHot = Self.frequent.filter { hot.contains($0) }
        switch policy {
        case .lru: #expect(frequentHot.isEmpty, "LRU kept \(frequentHot) hot")
        case .adaptive: #expect(frequentHot.count == Self.frequent.count, "adaptive kept only \(frequentHot) hot")
        }
        // Whatever the order, every key still reads back intact (hot, volatile or regenerated).
        for key in Self.frequent + Array(100..<200) { #expect(try read(cache, key, byteCount: Self.size)) }
    }

    /// Shedding takes the policy's demotion order: stopped part-way (as a pressure pass that
    /// reaches its target does), the adaptive policy has given back the one-time keys and kept
    /// the frequent ones; LRU has given back the frequent ones (the oldest). The kernel takes
    /// lazily freed pages oldest first, so this is also the order in which they would be lost.
    @Test(arguments: [CachePolicy.lru, .adaptive])
    func shedGivesBackLeastValuableFirst(policy: CachePolicy) throws {
        let cache = try makePolicyCache(policy)
        try warm(cache)
        for key in 100..<148 { #expect(try read(cache, key, byteCount: Self.size)) }
        #expect(cache.demote(toBudget: 16 * Self.size, shedding: true) == 48 * Self.size)
        let hot = Set(cache.hotKeys)
        switch policy {
        case .lru:
            // The newest one-time keys, and the few frequent keys whose last hits were still
            // in read buffers when the one-time keys came (drained, hence stamped, later).
            #expect(hot.intersection(Self.frequent).count < 8, "LRU kept \(hot.sorted())")
        case .adaptive: #expect(hot == Set(Self.frequent), "adaptive kept \(hot.sorted())")
        }
        #expect(cache.shed() == 16 * Self.size)
        for key in Self.frequent + Array(100..<148) { #expect(try read(cache, key, byteCount: Self.size)) }
    }

    /// The resident capacity is learned from a drop: after the kernel (here, drop injection)
    /// takes volatile pages, the cache forgets the wholly dropped entries, caps its resident
    /// bytes below what was left, and keeps to it as new entries arrive; LRU learns nothing.
    @Test(arguments: [CachePolicy.lru, .adaptive])
    func residentCapacityIsLearnedFromDrops(policy: CachePolicy) throws {
        let cache = try makePolicyCache(policy, hot: 8 * Self.size)
        for key in 0..<64 { #expect(try read(cache, key, byteCount: Self.size)) }
        let deadline = ContinuousClock.now + .seconds(30)
        while cache.volatileKeys.count < 56 && ContinuousClock.now < deadline {
            cache.collectRetired()
            usleepMilliseconds(10)
        }
        let volatile = cache.volatileKeys
        #expect(volatile.count >= 56)
        #expect(try cache.dropVolatilePages(forKeys: volatile.prefix(32)) == 32)
        // An access that meets a dropped entry is the signal.
        #expect(try read(cache, volatile[0], byteCount: Self.size))
        switch policy {
        case .lru:
            #expect(cache.learnedResidentCapacity == nil)
        case .adaptive:
            let capacity = try #require(cache.learnedResidentCapacity)
            #expect(capacity <= 34 * Self.size)
            for key in 1_000..<1_100 { #expect(try read(cache, key, byteCount: Self.size)) }
            let booked = cache.statistics.hotBytes + cache.statistics.volatileBytes
            #expect(booked <= (cache.learnedResidentCapacity ?? 0) + Self.size, "booked \(booked)")
        }
    }
}
