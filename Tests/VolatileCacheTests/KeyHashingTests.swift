import Testing
@testable import VolatileCache

/// A key whose hash collides with every other's: only equality tells two apart.
private struct CollidingKey: Hashable, Sendable {
    var id: Int
    func hash(into hasher: inout Hasher) { hasher.combine(0) }
}

@Suite("Key hashing (one hash per access)")
struct KeyHashingTests {
    /// The shard tables reuse the hash the shard was chosen by; keys whose hashes all collide
    /// still find their own content, and removing one leaves the others reachable.
    @Test func collidingHashesKeepKeysApart() throws {
        var configuration = VolatileCache<CollidingKey>.Configuration(hotByteLimit: 64 << 20)
        configuration.shardCount = 4
        let cache = try VolatileCache<CollidingKey>(configuration: configuration)
        for id in 0..<200 {
            try cache.insert(forKey: CollidingKey(id: id), byteCount: page) { fill($0, seed: UInt64(id) + 1) }
        }
        for id in stride(from: 0, to: 200, by: 3) { #expect(cache.removeValue(forKey: CollidingKey(id: id))) }
        for id in 0..<200 {
            let content = try cache.withBytes(forKey: CollidingKey(id: id)) { verify($0, seed: UInt64(id) + 1) }
            #expect(content == (id % 3 == 0 ? nil : true), "key \(id)")
        }
        #expect(cache.count == 200 - 67)
        #expect(cache.statistics.hotHits == 200 - 67)
    }

    /// The key is hashed once, with `Hasher` (through `hashValue`); equal keys agree.
    @Test func hashedKeysHashOnceWithHasherAndEqualKeysAgree() {
        let a = HashedKey(42)
        let b = HashedKey(42)
        #expect(a == b && a.hash == 42.hashValue)
        #expect(a.hashValue == b.hashValue)
        #expect(HashedKey(42) != HashedKey(43))
    }
}
