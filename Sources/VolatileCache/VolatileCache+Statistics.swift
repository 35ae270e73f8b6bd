extension VolatileCache {
    /// A snapshot of a cache's figures.
    public struct Statistics: Hashable, Sendable, CustomStringConvertible {
        /// Hits on hot entries (no system call).
        public var hotHits: Int
        /// Hits on volatile entries whose pages were all intact (one re-pin).
        public var volatileHits: Int
        /// Look-ups that found no entry.
        public var misses: Int
        /// Volatile entries found with dropped pages on re-pin.
        public var droppedObjects: Int
        /// Dropped pages found on re-pin, in all.
        public var droppedPages: Int
        /// Successful regenerations (of misses and drops).
        public var regenerations: Int
        /// Regenerations that repaired only the dropped pages.
        public var partialRegenerations: Int
        /// Regenerations that failed (regenerator error, misuse, no memory).
        public var regenerationFailures: Int
        /// Time spent in successful regenerations, in all.
        public var regenerationTime: Duration
        /// Entries evicted by the cost or count limit, or to make memory.
        public var evictions: Int
        /// Hot entries demoted to volatile to fit the hot budget (not counting sheds).
        public var demotions: Int
        /// Shed passes: ``VolatileCache/shed()`` calls, including those a pressure monitor makes.
        public var sheds: Int
        /// Bytes (whole pages) that shed passes demoted to volatile, in all.
        public var shedBytes: Int
        /// Entries in the cache.
        public var entryCount: Int
        /// Total cost of the entries.
        public var totalCost: Int
        /// Bytes (whole pages) of entries pinned by readers now, including removed entries
        /// whose memory waits for their last pin to end.
        public var pinnedBytes: Int
        /// Bytes (whole pages) of hot entries, pinned or not.
        public var hotBytes: Int
        /// Bytes (whole pages) of volatile entries, resident or not
        /// (see ``VolatileCache/residentVolatileBytes()``).
        public var volatileBytes: Int
        /// Cost-aware volatility: swappable bytes, swap-ins observed, learned costs, decisions.
        public var volatility: VolatilityStatistics = VolatilityStatistics(
            policy: .automatic, environment: .none, swappableBytes: 0, swapInsObserved: 0,
            swapInNanosecondsPerByte: nil, swapOutNanosecondsPerByte: nil, swappableDecisions: 0, volatileDecisions: 0)

        /// Hits of both kinds.
        public var hits: Int { hotHits + volatileHits }

        /// All the figures on one line, for logs.
        public var description: String {
            "hits \(hotHits) hot + \(volatileHits) volatile, misses \(misses), drops \(droppedObjects) (\(droppedPages) pages), "
                + "regenerations \(regenerations) (\(partialRegenerations) partial, \(regenerationFailures) failed, \(regenerationTime)), "
                + "evictions \(evictions), demotions \(demotions), sheds \(sheds) (\(shedBytes) bytes), entries \(entryCount), bytes pinned \(pinnedBytes) / hot \(hotBytes) / volatile \(volatileBytes)"
        }
    }

    /// The cache's figures now. Counters are summed over the shards one at a time, so under
    /// concurrent use they are consistent per shard, not across shards.
    /// - Complexity: O(shards + hot entries): ``Statistics/pinnedBytes`` walks each shard's hot
    ///   entries under its lock (hits keep no pinned-bytes counter).
    public var statistics: Statistics {
        var counters = ShardCounters()
        var pinned = 0
        for index in shards.indices {
            let shard = shards[index]
            counters.hotHits += shard.bufferedHits()
            shard.pointee.state.withLock { state in
                let c = state.counters
                counters.hotHits += c.hotHits
                counters.volatileHits += c.volatileHits
                counters.misses += c.misses
                counters.droppedObjects += c.droppedObjects
                counters.droppedPages += c.droppedPages
                counters.regenerations += c.regenerations
                counters.partialRegenerations += c.partialRegenerations
                counters.regenerationFailures += c.regenerationFailures
                counters.regenerationNanoseconds += c.regenerationNanoseconds
                counters.evictions += c.evictions
                counters.demotions += c.demotions
                pinned += state.pinnedBytes()
            }
        }
        return Statistics(
            hotHits: counters.hotHits, volatileHits: counters.volatileHits, misses: counters.misses,
            droppedObjects: counters.droppedObjects, droppedPages: counters.droppedPages,
            regenerations: counters.regenerations, partialRegenerations: counters.partialRegenerations,
            regenerationFailures: counters.regenerationFailures,
            regenerationTime: .nanoseconds(counters.regenerationNanoseconds),
            evictions: counters.evictions, demotions: counters.demotions,
            sheds: totals.sheds.load(ordering: .relaxed), shedBytes: totals.shedBytes.load(ordering: .relaxed),
            entryCount: totals.entryCount.load(ordering: .relaxed), totalCost: totals.cost.load(ordering: .relaxed),
            pinnedBytes: pinned + totals.detachedPinnedBytes.load(ordering: .relaxed),
            hotBytes: totals.hotBytes.load(ordering: .relaxed),
            volatileBytes: totals.volatileBytes.load(ordering: .relaxed), volatility: volatilityStatistics)
    }

    /// Bytes of volatile entries still resident, from mincore (a snapshot: the kernel may
    /// drop more right after). Counts the whole arena, so share an arena between caches
    /// only if a combined figure is what you want.
    /// - Returns: The resident bytes of the arena's volatile extents.
    /// - Complexity: O(volatile pages), about 0.35 µs per MiB.
    public func residentVolatileBytes() -> Int {
        arena.residentVolatileBytes()
    }
}
