public import VolatileMemory

extension VolatileCache {
    /// How a cache sizes its hot set, bounds itself, and reacts to memory pressure.
    public struct Configuration: Sendable {
        /// Bytes of unpinned entries kept non-volatile (the hot set). Least recently used
        /// entries beyond it become volatile. Default: 64 MiB.
        public var hotByteLimit: Int
        /// Upper bound on the total cost of the entries (hot and volatile); `nil` for none.
        /// An entry's cost is its byte count unless its regenerator or `insert` says otherwise.
        /// Least recently used entries are evicted beyond it. Default: nil.
        public var totalCostLimit: Int?
        /// Upper bound on the number of entries; `nil` for none. Default: nil.
        public var countLimit: Int?
        /// The largest object; larger requests throw ``VolatileCacheError/objectTooLarge(requestedBytes:maximumBytes:)``.
        /// `nil` uses the arena's `VolatileArena.maximumExtentByteCount`. Default: nil.
        public var maximumObjectByteCount: Int?
        /// The arena the cache creates (ignored by ``VolatileCache/init(arena:configuration:)``).
        /// Its `VolatileArena.Configuration.maximumReservedBytes` bounds the cache's
        /// reserved virtual memory. Default: 256 MiB regions, no reservation bound.
        public var arena: VolatileArena.Configuration
        /// Number of lock shards the key space is split into (rounded up to a power of two).
        /// Default: 16.
        public var shardCount: Int
        /// Whether the cache starts a ``MemoryPressureMonitor`` (``MemoryPressureMonitor/Source/automatic``)
        /// that calls ``VolatileCache/shed()`` when pressure reaches ``pressureLevelToShed``.
        /// Default: false (call ``VolatileCache/startPressureMonitoring(source:)`` to start one later).
        public var monitorsMemoryPressure: Bool
        /// The lowest pressure level at which the monitor sheds the hot set. Default: `.medium`.
        public var pressureLevelToShed: MemoryPressureLevel

        /// Creates a configuration.
        /// - Parameters:
        ///   - hotByteLimit: Bytes of unpinned entries kept non-volatile.
        ///   - totalCostLimit: Bound on the total cost, or nil.
        ///   - countLimit: Bound on the number of entries, or nil.
        ///   - maximumReservedBytes: Bound on reserved virtual memory, or nil.
        public init(
            hotByteLimit: Int = 64 << 20,
            totalCostLimit: Int? = nil,
            countLimit: Int? = nil,
            maximumReservedBytes: Int? = nil
        ) {
            self.hotByteLimit = max(0, hotByteLimit)
            self.totalCostLimit = totalCostLimit
            self.countLimit = countLimit
            self.maximumObjectByteCount = nil
            self.arena = VolatileArena.Configuration(regionByteCount: 256 << 20, maximumReservedBytes: maximumReservedBytes)
            self.shardCount = 16
            self.monitorsMemoryPressure = false
            self.pressureLevelToShed = .medium
        }

        /// The default configuration: 64 MiB hot set, no limits.
        public static var `default`: Configuration { Configuration() }

        /// The residency policy: what stays hot, the order of demotion, eviction and shedding.
        /// Default: ``CachePolicy/lru``. ``CachePolicy/adaptive`` takes effect once it is wired
        /// into the hit path (issue 15); until then the cache uses LRU whatever this says.
        public var policy: CachePolicy = .lru
        /// Whether idle entries beyond the hot set become volatile or stay swappable (see
        /// ``VolatilityAdvisor``). Default: `.automatic`, which behaves like `.always` until the
        /// demotion path consults the advisor.
        public var volatility: Volatility = .automatic
    }
}
