/// Which entries a ``VolatileCache`` keeps hot, in what order it makes idle entries volatile
/// (the order the kernel takes them back), what it evicts under its count and cost limits, and
/// what it sheds first under pressure.
///
/// - Important: The adaptive policy is built and tested as a component (see
///   `volatile-policy-sim`), but not yet wired into the cache's hit path: until it is, a cache
///   configured with ``adaptive`` behaves as ``lru``.
public enum CachePolicy: String, Sendable, CaseIterable {
    /// Least recently used: the entry idle longest goes first.
    case lru
    /// Frequency- and size-aware (W-TinyLFU): a small recency window in front of a main space
    /// that a newcomer enters only if its recent accesses per byte beat those of the entries it
    /// would displace. Resists scans and keeps hit rates near the static optimum on skewed
    /// (Zipf) workloads.
    case adaptive
}
