// A key with its hash computed once: the shard is picked from the hash's high bits and the
// shard's table reuses the same hash, so a hit hashes the key once.

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

    // Dictionary asks for this instead of running a `Hasher`: `hash` is already a seeded
    // SipHash of the key, so a cheap mix with the table's seed (which Dictionary varies per
    // storage) is enough and saves the second hash of every look-up.
    @inlinable
    func _rawHashValue(seed: Int) -> Int {
        var bits = UInt64(UInt(bitPattern: hash ^ seed))
        bits ^= bits >> 32
        bits &*= 0x9E37_79B9_7F4A_7C15
        bits ^= bits >> 29
        return Int(truncatingIfNeeded: bits)
    }
}
