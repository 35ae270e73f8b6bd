import Synchronization
import Testing
@testable import VolatileCache
import VolatileMemory

/// Issue 12: nonsense configurations and arguments are typed errors, never traps or hangs.
@Suite struct ConfigurationValidationTests {
    /// The field named by the error `VolatileCache.init` throws for `configuration`.
    private func rejectedField(_ configuration: VolatileCache<Int>.Configuration) -> String? {
        do {
            _ = try VolatileCache<Int>(configuration: configuration)
            return nil
        } catch VolatileCacheError.invalidConfiguration(let field, _) {
            return field
        } catch {
            return "unexpected error: \(error)"
        }
    }

    @Test func nonsenseValuesAreRejectedNamingTheField() {
        typealias Configuration = VolatileCache<Int>.Configuration
        let cases: [(String, (inout Configuration) -> Void)] = [
            ("hotByteLimit", { $0.hotByteLimit = -1 }),
            ("totalCostLimit", { $0.totalCostLimit = 0 }),
            ("totalCostLimit", { $0.totalCostLimit = -5 }),
            ("countLimit", { $0.countLimit = 0 }),
            ("shardCount", { $0.shardCount = 0 }),
            ("shardCount", { $0.shardCount = -3 }),
            ("shardCount", { $0.shardCount = Int.max }),
            ("shardCount", { $0.shardCount = 1 << 40 }),
            ("maximumObjectByteCount", { $0.maximumObjectByteCount = 0 }),
            ("maximumObjectByteCount", { $0.maximumObjectByteCount = -1 }),
            ("maximumObjectByteCount", { $0.maximumObjectByteCount = Int.max }),
            ("maximumObjectByteCount", { $0.maximumObjectByteCount = 64 << 20; $0.arena.maximumReservedBytes = 32 << 20 }),
            ("arena.maximumReservedBytes", { $0.arena.maximumReservedBytes = 0 }),
            ("arena.maximumReservedBytes", { $0.arena.maximumReservedBytes = -1 }),
            ("arena.regionByteCount", { $0.arena.regionByteCount = 0 }),
            ("arena.regionByteCount", { $0.arena.regionByteCount = Int.max }),
            ("arena.minimumRegionByteCount", { $0.arena.minimumRegionByteCount = -1 }),
            ("arena.maximumExtentByteCount", { $0.arena.maximumExtentByteCount = 0 }),
            ("arena.recycledByteLimit", { $0.arena.recycledByteLimit = -1 }),
            ("arena.warmRecycledByteLimit", { $0.arena.warmRecycledByteLimit = -1 }),
        ]
        for (field, change) in cases {
            var configuration = Configuration()
            change(&configuration)
            #expect(rejectedField(configuration) == field)
        }
        // The initializer's own parameters go through the same check.
        #expect(rejectedField(Configuration(hotByteLimit: -1)) == "hotByteLimit")
        #expect(rejectedField(Configuration(maximumReservedBytes: 0)) == "arena.maximumReservedBytes")
    }

    @Test func boundaryValuesAreAccepted() throws {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 0, totalCostLimit: 1, countLimit: 1)
        configuration.shardCount = VolatileCache<Int>.Configuration.maximumShardCount
        let cache = try VolatileCache<Int>(configuration: configuration)
        #expect(try read(cache, 1, byteCount: page))
        configuration.shardCount = 1
        #expect(try read(VolatileCache<Int>(configuration: configuration), 1, byteCount: page))
    }

    @Test func anExistingArenaChecksTheCacheFieldsOnly() throws {
        let arena = try VolatileArena(configuration: .init(regionByteCount: 16 << 20))
        var configuration = VolatileCache<Int>.Configuration()
        configuration.arena.maximumReservedBytes = -1  // ignored: the arena exists
        #expect(throws: Never.self) { _ = try VolatileCache<Int>(arena: arena, configuration: configuration) }
        configuration.countLimit = 0
        #expect {
            _ = try VolatileCache<Int>(arena: arena, configuration: configuration)
        } throws: { error in
            guard case VolatileCacheError.invalidConfiguration(let field, _) = error else { return false }
            return field == "countLimit" && "\(error)".contains("VolatileCache.init")
        }
    }

    @Test func errorTextsNameTheCall() throws {
        let cache = try makeCache()
        let maximum = cache.maximumObjectByteCount
        var text = ""
        do { try cache.insert(forKey: 1, byteCount: maximum + 1) { _ in } } catch { text = "\(error)" }
        #expect(text.contains("\(maximum + 1) bytes") && !text.contains("regenerator"))
        do { try cache.insert([1, 2, 3], forKey: 1, cost: -1) } catch { text = "\(error)" }
        #expect(text.hasPrefix("VolatileCache.insert: cost -1"))
        do {
            try cache.withBytes(forKey: 2, regenerate: { try $0.write(byteCount: page, cost: -2) { $0.count } }) { _ in }
        } catch { text = "\(error)" }
        #expect(text.hasPrefix("RegenerationContext.write(byteCount:cost:_:): cost -2"))
    }
}

@Suite struct CostTests {
    @Test func negativeCostsAreTypedErrorsAndInsertNothing() throws {
        let cache = try makeCache(costLimit: 100 * page)
        #expect(throws: VolatileCacheError.invalidArgument(call: "VolatileCache.insert", argument: "cost", value: -1, reason: costRule)) {
            try cache.insert([1, 2, 3], forKey: 1, cost: -1)
        }
        #expect {
            try cache.withBytes(forKey: 2, regenerate: { try $0.write(byteCount: page, cost: Int.min) { $0.count } }) { _ in }
        } throws: { error in
            guard case VolatileCacheError.invalidArgument(_, "cost", Int.min, _) = error else { return false }
            return true
        }
        #expect(!cache.contains(1) && !cache.contains(2))
        #expect(cache.statistics.totalCost == 0 && cache.arena.statistics.extentCount == 0)
    }

    @Test func hugeCostsSaturateWithoutTrapping() throws {
        let maximumCost = VolatileCache<Int>.Configuration.maximumCost
        // Without a limit: sums of saturated costs stay exact.
        let unlimited = try makeCache()
        for key in 0..<8 { try unlimited.insert([UInt8](repeating: 1, count: 16), forKey: key, cost: Int.max) }
        #expect(unlimited.statistics.totalCost == 8 * maximumCost)
        #expect(unlimited.count == 8)

        // With a limit: the huge entry stays (the entry just inserted is never the victim)
        // and pushes out every other one.
        let cache = try makeCache(costLimit: 10 * page)
        for key in 0..<4 { try read(cache, key, byteCount: page) }
        try cache.insert([UInt8](repeating: 7, count: 100), forKey: 99, cost: Int.max)
        #expect(cache.contains(99) && cache.count == 1)
        #expect(cache.statistics.totalCost == maximumCost)
        // Later entries replace it (it is the oldest and over the limit on its own).
        try cache.insert([UInt8](repeating: 8, count: 100), forKey: 100, cost: Int.max - 1)
        #expect(cache.contains(100) && !cache.contains(99) && cache.count == 1)
        // A regenerator's cost saturates too.
        #expect(try cache.withBytes(forKey: 5, regenerate: { try $0.write(byteCount: page, cost: Int.max) { $0.count } }) { $0.count } == page)
        #expect(cache.statistics.totalCost == maximumCost && cache.count == 1)
        try cache.insert([1], forKey: 6, cost: 0)
        #expect(cache.count == 1 && cache.contains(6), "over the limit with 2^40: only the new entry stays")
        try cache.insert([1], forKey: 7, cost: 0)
        #expect(cache.count == 2 && cache.statistics.totalCost == 0)
    }
}

/// Issue 12, item 3: objects larger than the arena's default region.
@Suite struct LargeObjectTests {
    @Test func aOneGiBObjectIsStoredAndReadBack() throws {
        let size = 1 << 30
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 64 << 20)
        configuration.maximumObjectByteCount = size
        let cache = try VolatileCache<Int>(configuration: configuration)
        #expect(cache.maximumObjectByteCount == size)
        #expect(cache.arena.maximumExtentByteCount >= size, "the arena's extent limit follows the cache's")
        try cache.insert(forKey: 1, byteCount: size) { fill($0, seed: 77) }
        // Over the hot budget: it went volatile; reading it re-pins it.
        #expect(try cache.withBytes(forKey: 1) { $0.count == size && verify($0, seed: 77) } == true)
        #expect(throws: VolatileCacheError.objectTooLarge(requestedBytes: size + 1, maximumBytes: size)) {
            try cache.insert(forKey: 2, byteCount: size + 1) { _ in }
        }
        cache.removeAll()
        #expect(cache.arena.residentBytesInRegions() == 0)
    }

    /// The README's object-size snippet ("Configuration limits, object size and misuse").
    @Test func readmeObjectSizeSnippet() throws {
        var configuration = VolatileCache<String>.Configuration()
        configuration.maximumObjectByteCount = 1 << 30      // 1 GiB; the arena follows
        let big = try VolatileCache<String>(configuration: configuration)
        #expect(big.maximumObjectByteCount == 1 << 30 && big.arena.maximumExtentByteCount == 1 << 30)
    }

    @Test func theDefaultLimitIsTheRegionSize() throws {
        let cache = try VolatileCache<Int>()
        #expect(cache.maximumObjectByteCount == 256 << 20)
        #expect(cache.maximumObjectByteCount == cache.arena.maximumExtentByteCount)
    }
}
