// The shape every ordering policy has, so the cache (after the hit-path rewrite) and the
// simulator drive LRU and the adaptive policy through one interface.
//
// In the cache the policy's capacity is the hot-set budget: keys it evicts are demoted to
// volatile (in that order, which is the order the kernel reclaims them), and its
// `evictionOrder()` is the order to demote when shedding. The same admission comparison
// picks victims under the count and cost limits.

/// A byte-bounded (or cost-bounded) residency policy: which keys stay, and who goes first.
///
/// Not thread-safe: the cache drives it under its policy lock from drained read buffers.
package protocol ResidencyPolicy<Key>: Sendable {
    /// The key type.
    associatedtype Key: Hashable & Sendable

    /// The most weight the policy keeps resident.
    var capacity: Int { get }
    /// The weight resident now.
    var weightedSize: Int { get }
    /// The keys resident now.
    var count: Int { get }

    /// Whether `key` is resident.
    func contains(_ key: Key) -> Bool

    /// Records an access of a resident key (a hit).
    /// - Parameters:
    ///   - key: The key.
    ///   - hash: Its hash.
    /// - Returns: False if the key was not resident (nothing is reordered then, but the
    ///   access still counts towards its frequency).
    @discardableResult
    mutating func recordHit(_ key: Key, hash: UInt64) -> Bool

    /// Records an access of a key that is not resident (a miss) and offers it for residency.
    /// - Parameters:
    ///   - key: The key (not resident).
    ///   - hash: Its hash.
    ///   - weight: Its weight (bytes or cost), > 0.
    ///   - evicted: Called with every key that leaves, in order (possibly `key` itself when
    ///     the policy rejects it).
    /// - Returns: Whether `key` is resident afterwards.
    @discardableResult
    mutating func recordMiss(_ key: Key, hash: UInt64, weight: Int, evicted: (Key) -> Void) -> Bool

    /// Removes `key` (the cache dropped or removed it).
    mutating func remove(_ key: Key)

    /// Resident keys from the first to give up to the last: the demotion and shedding order.
    /// - Complexity: O(n log n) at most.
    func evictionOrder() -> [Key]

    /// Tells the policy how many keys the cache knows, resident or not (the cache: its hot
    /// and volatile entries), so that frequency state can be sized for them.
    /// - Parameter count: The number of keys known.
    mutating func noteKnownKeys(_ count: Int)
}

extension ResidencyPolicy {
    /// Ignored by policies without frequency state.
    package mutating func noteKnownKeys(_ count: Int) {}
}
