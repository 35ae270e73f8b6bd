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

        /// Creates a configuration.
        /// - Parameters:
        ///   - hotByteLimit: Bytes of slab pages kept pinned.
        ///   - shardCount: Lock shards.
        ///   - arena: The arena's configuration.
        public init(hotByteLimit: Int = 64 << 20, shardCount: Int = 16, arena: VolatileArena.Configuration = .default) {
            self.hotByteLimit = hotByteLimit
            self.shardCount = shardCount
            self.arena = arena
        }

        /// The default configuration: 64 MiB hot set, 16 shards.
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
        }
    }
}
