extension SmallObjectCache {
    /// What a small-object cache holds and what its accesses found, summed over its shards.
    public struct Statistics: Hashable, Sendable {
        /// Entries (including those whose volatile page was dropped, until accessed).
        public var entryCount = 0
        /// Objects held: the entries minus those whose page was dropped or evicted (such an
        /// entry goes when it is accessed, or with the next eviction's sweep).
        public var objectCount = 0
        /// Bytes of the objects themselves: their real size (not rounded to pages).
        public var objectBytes = 0
        /// Bytes of the slots the objects take (rounded up to their size class).
        public var slotBytes = 0
        /// Bytes of the slab pages that are pinned.
        public var hotPageBytes = 0
        /// Bytes of the slab pages that are volatile.
        public var volatilePageBytes = 0
        /// Hits on a pinned page.
        public var hotHits = 0
        /// Hits that re-pinned a volatile page intact.
        public var volatileHits = 0
        /// Look-ups that found nothing (absent, or the page was dropped).
        public var misses = 0
        /// Slab pages found dropped by the kernel.
        public var droppedPages = 0
        /// Objects lost with those pages.
        public var droppedObjects = 0
        /// Pins and unpins of slab pages (one system call each, for all their objects).
        public var pagePins = 0
        /// Unpins of slab pages.
        public var pageUnpins = 0
        /// Objects evicted by ``Configuration/countLimit`` or ``Configuration/totalCostLimit``.
        public var evictedObjects = 0
        /// Slab pages evicted with them (a page is evicted whole, its frees coalesced with
        /// the other pages of the same eviction).
        public var evictedPages = 0
        /// Slab pages the clock found holding mostly cold objects among a few recently used
        /// ones: it made them volatile at once and marked them draining (see
        /// ``SmallObjectCache`` on regrouping by recency).
        public var drainedPages = 0
        /// Objects moved off draining pages to the page being filled when they were read, so
        /// that recently used objects share pages.
        public var relocatedObjects = 0
        /// Regenerations run by ``SmallObjectCache/withBytes(forKey:regenerate:_:)``.
        public var regenerations = 0
        /// Estimated bytes of per-entry metadata (the dictionary slots) per entry.
        public var metadataBytesPerEntry = 0
    }

    /// A snapshot of the cache's figures.
    /// - Complexity: O(shards).
    public var statistics: Statistics {
        var result = Statistics()
        var capacity = 0
        let pageSize = arena.pageSize
        for shard in shards {
            let figures = shard.withLock { state in
                var figures = state.figures
                figures.entryCount = state.entries.count
                figures.hotPageBytes = state.pinnedPages * pageSize
                figures.volatilePageBytes = state.volatilePages * pageSize
                capacity += state.entries.capacity
                return figures
            }
            result.add(figures)
        }
        // A dictionary slot: key and value, plus about one byte of occupancy metadata.
        let slot = MemoryLayout<Key>.stride + MemoryLayout<SmallSlot>.stride + 1
        result.metadataBytesPerEntry = result.entryCount == 0 ? slot : capacity * slot / result.entryCount
        return result
    }
}

extension SmallObjectCache.Statistics {
    /// Adds another shard's figures (all but the per-entry estimate, computed over the sum).
    mutating func add(_ other: Self) {
        let summed: [WritableKeyPath<Self, Int>] = [
            \.entryCount, \.objectCount, \.objectBytes, \.slotBytes, \.hotPageBytes, \.volatilePageBytes, \.hotHits, \.volatileHits,
            \.misses, \.droppedPages, \.droppedObjects, \.pagePins, \.pageUnpins, \.evictedObjects, \.evictedPages,
            \.regenerations, \.drainedPages, \.relocatedObjects,
        ]
        for field in summed { self[keyPath: field] += other[keyPath: field] }
    }
}
