// A key with its hash computed once (with `Hasher`, through `hashValue`): the shard is picked
// from the hash's high bits and the shard's hot index probes from its low bits, so a hit
// hashes the key once. The locked dictionary hashes the stored hash again (misses only).

/// A key and its `hashValue`, computed once per access.
@usableFromInline
struct HashedKey<Key: Hashable & Sendable>: Hashable, Sendable {
    @usableFromInline let key: Key
    /// `key.hashValue` (seeded per process by the standard library).
    @usableFromInline let hash: Int

    @inlinable
    init(_ key: Key) {
        self.key = key
        self.hash = key.hashValue
    }

    @inlinable
    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.hash == rhs.hash && lhs.key == rhs.key
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}
