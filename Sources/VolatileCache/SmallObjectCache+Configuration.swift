public import VolatileMemory

extension SmallObjectCache {
    /// How a small-object cache sizes its hot set.
    public struct Configuration: Sendable {
        /// Bytes of slab pages kept pinned (the hot set), beyond the pages being filled and
        /// read. Least recently used pages beyond it become volatile. Default: 64 MiB.
        public var hotByteLimit: Int
        /// Number of lock shards the key space is split into (rounded up to a power of two).
        /// Between 1 and 1024. Default: 16.
        public var shardCount: Int
        /// The arena the cache creates (ignored by ``SmallObjectCache/init(arena:configuration:)``).
        public var arena: VolatileArena.Configuration
        /// Upper bound on the number of objects; nil for none. Each shard holds at most its
        /// share (`countLimit / shardCount`, rounded up). Beyond it, whole slab pages are
        /// evicted in bulk (see ``SmallObjectCache/Statistics/evictedPages``). Default: nil.
        public var countLimit: Int?
        /// Upper bound on the total cost of the objects, an object's cost being its byte count;
        /// nil for none. Shared among the shards and enforced as ``countLimit`` is. Default: nil.
        public var totalCostLimit: Int?
        /// Whether the hot budget's clock regroups objects by recency (moves the recently read
        /// objects of mostly cold pages to the page being filled). On by default; off only for
        /// the package's own comparisons (tests and `volatile-bench`).
        package var regroupsByRecency = true

        /// Creates a configuration.
        /// - Parameters:
        ///   - hotByteLimit: Bytes of slab pages kept pinned.
        ///   - shardCount: Lock shards.
        ///   - arena: The arena's configuration.
        ///   - countLimit: Bound on the number of objects, or nil.
        ///   - totalCostLimit: Bound on the objects' total byte count, or nil.
        public init(
            hotByteLimit: Int = 64 << 20, shardCount: Int = 16, arena: VolatileArena.Configuration = .default,
            countLimit: Int? = nil, totalCostLimit: Int? = nil
        ) {
            self.hotByteLimit = hotByteLimit
            self.shardCount = shardCount
            self.arena = arena
            self.countLimit = countLimit
            self.totalCostLimit = totalCostLimit
        }

        /// The default configuration: 64 MiB hot set, 16 shards, no count or cost limit.
        public static var `default`: Configuration { Configuration() }

        /// Checks every field.
        /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` naming the first
        ///   field out of range.
        public func validate() throws(VolatileCacheError) {
            guard hotByteLimit >= 0 else {
                throw .invalidConfiguration(field: "hotByteLimit", reason: "\(hotByteLimit); accepted: 0 or more")
            }
            guard (1...1024).contains(shardCount) else {
                throw .invalidConfiguration(field: "shardCount", reason: "\(shardCount); accepted: 1...1024")
            }
            for (field, limit) in [("countLimit", countLimit), ("totalCostLimit", totalCostLimit)] {
                if let limit, limit <= 0 {
                    throw .invalidConfiguration(field: field, reason: "\(limit); accepted: 1 or more, or nil for no limit")
                }
            }
        }
    }
}
