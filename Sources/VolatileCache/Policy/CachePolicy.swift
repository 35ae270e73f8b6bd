/// Which entries a ``VolatileCache`` keeps hot, in what order it makes idle entries volatile
/// (the order the kernel takes them back), what it evicts under its count and cost limits, and
/// what it sheds first under pressure. Set with ``VolatileCache/Configuration/policy``.
///
/// Frequencies come from the read buffers that lock-free hits already write (a per-shard
/// sketch updated when a buffer is drained under the shard lock): a hot hit costs the same
/// under both policies.
public enum CachePolicy: String, Sendable, CaseIterable {
    /// Least recently used: the entry idle longest goes first.
    case lru
    /// Frequency- and size-aware (TinyLFU, with the hot set as the admission window): the
    /// entry with the fewest recent accesses per byte goes first, among the oldest hot and
    /// volatile entries; a newcomer under the count or cost limit must be strictly more valuable
    /// than its victim, so a one-time sweep of new keys does not flush the frequent ones.
    /// Once the kernel has dropped volatile pages, the cache learns how many bytes it may keep
    /// resident and evicts the least valuable itself, instead of letting the kernel take the
    /// oldest.
    case adaptive
}
