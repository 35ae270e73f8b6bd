import Testing
import VolatileCache

/// NSCache-style usage, written against VolatileCache.
@Suite("NSCache-equivalent usage")
struct NSCacheMigrationTests {
    @Test func setGetRemoveWithCountAndCostLimits() throws {
        // let cache = NSCache<NSString, NSData>(); cache.countLimit = 2; cache.totalCostLimit = 100
        let cache = try VolatileCache<String>(configuration: .init(totalCostLimit: 100, countLimit: 2))
        // cache.setObject(data, forKey: "a", cost: 10)
        try cache.insert([1, 2, 3], forKey: "a", cost: 10)
        try cache.insert([4, 5], forKey: "b", cost: 10)
        // cache.object(forKey: "a")
        #expect(try cache.bytes(forKey: "a") == [1, 2, 3])
        // Over the count limit: the least recently used ("b") goes, not the new one.
        try cache.insert([6], forKey: "c", cost: 10)
        #expect(try cache.bytes(forKey: "b") == nil)
        #expect(try cache.bytes(forKey: "c") == [6])
        // cache.removeObject(forKey: "a"); cache.removeAllObjects()
        #expect(cache.removeValue(forKey: "a"))
        #expect(!cache.contains("a"))
        cache.removeAll()
        #expect(cache.statistics.entryCount == 0)
    }

    @Test func getOrDecodeReplacesTheObjectForKeyNilCheck() throws {
        // if let data = cache.object(forKey: key) { use(data) } else { decode, setObject, use }
        let cache = try VolatileCache<String>()
        var decodes = 0
        for _ in 0..<3 {
            let sum = try cache.withBytes(forKey: "image", regenerate: { context in
                decodes += 1
                try context.write(byteCount: 16) { pixels in
                    for index in pixels.indices { pixels[index] = UInt8(index) }
                    return pixels.count
                }
            }) { pixels in pixels.reduce(0) { $0 + Int($1) } }
            #expect(sum == 120)
        }
        #expect(decodes == 1)
    }
}
