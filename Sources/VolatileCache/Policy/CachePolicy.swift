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
    /// Frequency- and size-aware (W-TinyLFU, as in Caffeine): a new entry enters a small
    /// admission window (1 % of the resident weight); leaving it, it must be worth strictly
    /// more recent accesses per byte (per unit of cost under a cost limit) than the oldest
    /// entries of the main space it would displace, or it is evicted, so a one-time sweep of
    /// new keys does not flush the frequent ones. The main space is split into probation and
    /// protected (80 %): an entry accessed again in probation is protected. Demotion and
    /// shedding take probation first and protected last, the fewest accesses per byte first.
    /// Once the kernel has dropped volatile pages, the cache learns how many bytes it may keep
    /// resident and evicts by the same rule itself, instead of letting the kernel take the
    /// oldest.
    case adaptive
}
