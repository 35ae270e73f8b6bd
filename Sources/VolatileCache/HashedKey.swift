// A key with its hash computed once (with `Hasher`, through `hashValue`): the shard is picked
// from the hash's high bits and the shard's hot index probes from its low bits, so a hit
// hashes the key once. The locked dictionary hashes the stored hash again (misses only).

/// A key and its `hashValue`, computed once per access.
@usableFromInline
struct HashedKey<Key: Hashable & Sendable>: Hashable, Sendable {
    /// `key.hashValue` (seeded per process by the standard library). First: its offset is
    /// then known without the type's metadata, which unspecialized generic code (the
    /// dictionary's `==`) would otherwise look up at run time for every comparison.
    @usableFromInline let hash: Int
    @usableFromInline let key: Key

    @inlinable
    init(_ key: Key) {
        self.hash = key.hashValue
        self.key = key
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
