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
        /// `nil` uses the arena's `VolatileArena.maximumExtentByteCount` (the region size,
        /// 256 MiB by default). A larger value raises the extent limit of the arena the cache
        /// creates to match (an object larger than a region gets a dedicated region); with
        /// ``VolatileCache/init(arena:configuration:)`` it is capped by the given arena's limit.
        /// Between 1 and ``maximumByteCountLimit``. Default: nil.
        public var maximumObjectByteCount: Int?
        /// The arena the cache creates (ignored by ``VolatileCache/init(arena:configuration:)``).
        /// Its `VolatileArena.Configuration.maximumReservedBytes` bounds the cache's
        /// reserved virtual memory. Default: 256 MiB regions, no reservation bound.
        public var arena: VolatileArena.Configuration
        /// Number of lock shards the key space is split into (rounded up to a power of two).
        /// Between 1 and ``maximumShardCount``. Default: 16.
        public var shardCount: Int
        /// Whether the cache starts a ``MemoryPressureMonitor`` (``MemoryPressureMonitor/Source/automatic``)
        /// that calls ``VolatileCache/shed()`` when pressure reaches ``pressureLevelToShed``.
        /// Default: false (call ``VolatileCache/startPressureMonitoring(source:)`` to start one later).
        public var monitorsMemoryPressure: Bool
        /// The lowest pressure level at which the monitor sheds the hot set. Default: `.medium`.
        public var pressureLevelToShed: MemoryPressureLevel
        /// Debug aid: unpinned extents (volatile ones, and freed ones kept for reuse) are made
        /// inaccessible (`mprotect(PROT_NONE)`), so a pointer that escaped a body faults at
        /// once instead of reading zeros or another key's bytes; a SIGSEGV handler then prints
        /// "access to an unpinned VolatileCache object" and the address before the process
        /// dies. A re-pin restores access. Costs two `mprotect` calls per unpin/pin pair.
        /// Applies to the arena the cache creates. Default: true in debug builds, false in
        /// release builds (which contain none of it unless it is set).
        public var debugProtectUnpinned: Bool

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
            self.hotByteLimit = hotByteLimit
            self.totalCostLimit = totalCostLimit
            self.countLimit = countLimit
            self.maximumObjectByteCount = nil
            self.arena = VolatileArena.Configuration(regionByteCount: 256 << 20, maximumReservedBytes: maximumReservedBytes)
            self.shardCount = 16
            self.monitorsMemoryPressure = false
            self.pressureLevelToShed = .medium
            #if DEBUG
            self.debugProtectUnpinned = true
            #else
            self.debugProtectUnpinned = false
            #endif
        }

        /// The largest ``shardCount``: more shards cost memory and eviction scans for no gain.
        public static var maximumShardCount: Int { 1 << 12 }
        /// The largest byte size a configuration accepts (64 TiB, half the x86-64 user
        /// address space): for ``maximumObjectByteCount`` and the arena's sizes.
        public static var maximumByteCountLimit: Int { 1 << 46 }
        /// The largest cost an entry counts for; larger costs saturate to it, so that no sum of
        /// costs can overflow. 2⁴⁰ (a cost in bytes up to 1 TiB counts exactly).
        public static var maximumCost: Int { 1 << 40 }

        /// Checks every field; `VolatileCache.init` calls it before creating anything.
        /// - Parameter includingArena: Whether to check ``arena`` too (false when the cache is
        ///   given an existing arena, which ignores it).
        /// - Throws: ``VolatileCacheError/invalidConfiguration(field:reason:)`` naming the
        ///   first field found out of range.
        public func validate(includingArena: Bool = true) throws(VolatileCacheError) {
            func fail(_ field: String, _ value: Int, _ accepted: String) -> VolatileCacheError {
                .invalidConfiguration(field: field, reason: "\(value); accepted: \(accepted)")
            }
            let sizes = "1...\(Self.maximumByteCountLimit)"
            guard hotByteLimit >= 0 else { throw fail("hotByteLimit", hotByteLimit, "0 or more") }
            if let totalCostLimit, totalCostLimit <= 0 {
                throw fail("totalCostLimit", totalCostLimit, "1 or more, or nil for no limit")
            }
            if let countLimit, countLimit <= 0 { throw fail("countLimit", countLimit, "1 or more, or nil for no limit") }
            guard (1...Self.maximumShardCount).contains(shardCount) else {
                throw fail("shardCount", shardCount, "1...\(Self.maximumShardCount)")
            }
            if let maximumObjectByteCount {
                guard (1...Self.maximumByteCountLimit).contains(maximumObjectByteCount) else {
                    throw fail("maximumObjectByteCount", maximumObjectByteCount, "\(sizes), or nil for the arena's extent limit")
                }
                if includingArena, let reserved = arena.maximumReservedBytes, maximumObjectByteCount > reserved {
                    throw .invalidConfiguration(
                        field: "maximumObjectByteCount",
                        reason: "\(maximumObjectByteCount) is more than arena.maximumReservedBytes (\(reserved)): no such object could be stored")
                }
            }
            guard includingArena else { return }
            guard (1...Self.maximumByteCountLimit).contains(arena.regionByteCount) else {
                throw fail("arena.regionByteCount", arena.regionByteCount, sizes)
            }
            guard (1...Self.maximumByteCountLimit).contains(arena.minimumRegionByteCount) else {
                throw fail("arena.minimumRegionByteCount", arena.minimumRegionByteCount, sizes)
            }
            if let reserved = arena.maximumReservedBytes, reserved <= 0 {
                throw fail("arena.maximumReservedBytes", reserved, "1 or more, or nil for no bound")
            }
            if let extent = arena.maximumExtentByteCount, !(1...Self.maximumByteCountLimit).contains(extent) {
                throw fail("arena.maximumExtentByteCount", extent, "\(sizes), or nil for the region size")
            }
            guard arena.recycledByteLimit >= 0 else {
                throw fail("arena.recycledByteLimit", arena.recycledByteLimit, "0 (no recycling) or more")
            }
            guard arena.warmRecycledByteLimit >= 0 else {
                throw fail("arena.warmRecycledByteLimit", arena.warmRecycledByteLimit, "0 (recycled extents all volatile) or more")
            }
        }

        /// The arena configuration the cache creates its arena with: ``arena``, with its
        /// extent limit raised to ``maximumObjectByteCount`` and ``debugProtectUnpinned``.
        var effectiveArena: VolatileArena.Configuration {
            var arena = arena
            arena.debugProtectsUnpinned = debugProtectUnpinned
            if let maximumObjectByteCount, maximumObjectByteCount > (arena.maximumExtentByteCount ?? arena.regionByteCount) {
                arena.maximumExtentByteCount = maximumObjectByteCount
            }
            return arena
        }

        /// The default configuration: 64 MiB hot set, no limits.
        public static var `default`: Configuration { Configuration() }

        /// The residency policy: the order of demotion (and so of loss to the kernel), what
        /// leaves under the count and cost limits, what ``VolatileCache/shed()`` gives back
        /// first, and (adaptive) how many bytes stay resident once the kernel has dropped some.
        /// Default: ``CachePolicy/lru``, exact least-recently-used order within a shard, which
        /// a cache without frequency information (a few accesses per key, or strict recency
        /// needs) does best with. Choose ``CachePolicy/adaptive`` for skewed, repeated
        /// accesses (Zipf-like popularity, scans): it keeps the most accessed bytes.
        public var policy: CachePolicy = .lru
        /// Whether idle entries beyond the hot set become volatile or stay swappable (see
        /// ``Volatility`` and ``VolatilityAdvisor``). Default: `.automatic`: an entry stays
        /// swappable when swap is usable, has headroom, and swapping it back in is cheaper than
        /// regenerating it (learned costs); otherwise it becomes volatile.
        public var volatility: Volatility = .automatic
    }
}
