public import Synchronization

// The shard table: one raw allocation holding the recency epoch and the lock shards, each on
// its own 128-byte-aligned block (two cache lines, so neither a neighbour's lock word nor the
// adjacent-line prefetcher makes two shards ping-pong). Reached through a plain pointer: no
// reference count is touched on the hit path.
//
// Recency clock. Each shard keeps its own counter under its lock; an access stamps its entry
// with `max(shard clock, epoch) + 1`. The global epoch is raised (an atomic `max`) by every
// install and by every 64th hit of a shard, and read by hits with a relaxed load: a hit never
// writes a line that another shard's hits write. Within a shard the stamps are exact LRU
// order; across shards they are a Lamport-style clock, so two accesses in different shards
// compare in the wrong order only when they are within about 64 hits of one shard of each other.

/// One lock shard: the key table, the hot and volatile lists, and its counters.
@usableFromInline
struct CacheShard<Key: Hashable & Sendable>: ~Copyable {
    @usableFromInline let state: Mutex<ShardState<Key>>

    init() {
        state = Mutex(ShardState<Key>())
    }
}

/// A shard's address in the table.
@usableFromInline
struct ShardPointer<Key: Hashable & Sendable>: @unchecked Sendable {  // Points at a shard, whose state is behind its Mutex or atomics.
    @usableFromInline let address: UnsafeMutablePointer<CacheShard<Key>>

    @inlinable
    init(_ address: UnsafeMutablePointer<CacheShard<Key>>) { self.address = address }

    @inlinable
    var pointee: CacheShard<Key> {
        unsafeAddress { UnsafePointer(address) }
    }
}

/// The global recency epoch's address.
@usableFromInline
struct EpochPointer: @unchecked Sendable {  // Points at an atomic.
    @usableFromInline let address: UnsafeMutablePointer<Atomic<UInt64>>

    @inlinable
    init(_ address: UnsafeMutablePointer<Atomic<UInt64>>) { self.address = address }

    @inlinable
    func load() -> UInt64 { address.pointee.load(ordering: .relaxed) }

    @inlinable
    func raise(to value: UInt64) { address.pointee.max(value, ordering: .relaxed) }
}

/// The shard table's memory (owned by the cache, freed in its deinit).
@usableFromInline
struct ShardTable<Key: Hashable & Sendable>: @unchecked Sendable {  // Immutable after init; each shard's state is behind its Mutex or atomics.
    @usableFromInline static var blockSize: Int { 128 }
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let mask: Int
    let count: Int

    init(count: Int) {
        precondition(count > 0 && count & (count - 1) == 0)
        let block = Self.blockSize
        stride = (MemoryLayout<CacheShard<Key>>.size + block - 1) / block * block
        self.count = count
        mask = count - 1
        base = .allocate(byteCount: block + stride * count, alignment: block)
        base.bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(1))
        for index in 0..<count {
            (base + block + index * stride).bindMemory(to: CacheShard<Key>.self, capacity: 1).initialize(to: CacheShard())
        }
    }

    /// Destroys the shards (their entries are released with them). Called once, by the cache's deinit.
    func destroy() {
        for index in 0..<count { self[index].address.deinitialize(count: 1) }
        base.assumingMemoryBound(to: Atomic<UInt64>.self).deinitialize(count: 1)
        base.deallocate()
    }

    @inlinable
    subscript(index: Int) -> ShardPointer<Key> {
        ShardPointer((base + Self.blockSize + index * stride).assumingMemoryBound(to: CacheShard<Key>.self))
    }

    /// The global recency epoch (alone on the table's first block).
    @inlinable
    var epoch: EpochPointer {
        EpochPointer(base.assumingMemoryBound(to: Atomic<UInt64>.self))
    }

    /// Every shard, in order.
    var all: [ShardPointer<Key>] { (0..<count).map { self[$0] } }
}

@usableFromInline
struct ShardState<Key: Hashable & Sendable> {
    /// The shard's entries. Each value holds one reference, taken with `passRetained` when
    /// the entry is stored and given up by ``VolatileCache/detach(_:from:into:)`` (to the
    /// garbage, or to the last reader of a removed entry): lookups read it without a retain.
    /// Keyed by ``HashedKey``: a hit hashes its key once, for the shard and this table.
    @usableFromInline var entries: [HashedKey<Key>: Unmanaged<CacheEntry<Key>>] = [:]
    // What a hit writes comes next, on the lock word's cache line: a hit then dirties one
    // line of the shard, not two (each is a cross-core transfer when another thread used
    // the shard last).
    /// The shard's recency clock (see the file comment).
    @usableFromInline var clock: UInt64 = 0
    /// Hits since the shard last raised the global epoch.
    @usableFromInline var unpublished: UInt64 = 0
    @usableFromInline var counters = ShardCounters()
    /// Hot entries ordered by ``CacheEntry/listedStamp`` (hits do not move them). Every entry
    /// readers hold is here (or removed): see ``pinnedBytes``.
    var hot = EntryList<Key>()
    /// Volatile entries ordered by stamp (they get no hits, so it never goes stale).
    var volatile = EntryList<Key>()

    /// The entry for `key`, as a strong reference (for the paths that keep it past the lock).
    func entry(for key: HashedKey<Key>) -> CacheEntry<Key>? {
        entries[key]?.takeUnretainedValue()
    }

    /// Stores a new entry under `key` (its key, hashed by the caller); the dictionary takes
    /// one reference.
    mutating func store(_ entry: CacheEntry<Key>, at key: HashedKey<Key>) {
        precondition(entries[key] == nil)
        entries[key] = Unmanaged.passRetained(entry)
    }

    /// A stamp for an access now (see the file comment). `publish` raises the global epoch.
    @inlinable
    mutating func nextStamp(epoch: EpochPointer, publish: Bool) -> UInt64 {
        let stamp = Swift.max(clock, epoch.load()) &+ 1
        clock = stamp
        unpublished &+= 1
        if publish || unpublished >= 64 {
            unpublished = 0
            epoch.raise(to: stamp)
        }
        return stamp
    }

    /// Bytes of the shard's entries that readers hold now. Computed on demand (statistics are
    /// not a hot path) so that hits and releases keep no pinned-bytes counter: a hold is only
    /// taken on a hot entry, and a hot entry with holds stays in the hot list until its last
    /// release or its removal (removed held entries are counted in `Totals`).
    /// - Complexity: O(hot entries of the shard).
    func pinnedBytes() -> Int {
        var bytes = 0
        var cursor = hot.newest
        while let entry = cursor {
            if entry.holds.load(ordering: .relaxed) >= 2 { bytes += entry.footprint }
            cursor = entry.older
        }
        return bytes
    }

    /// The least recently used hot entry that `isEligible` accepts, looking at most `limit`
    /// entries past ineligible ones. Entries hit since they were placed are first moved to
    /// their stamp's position (lazily, here, instead of on each hit), so the answer is the
    /// exact least recently used one of the shard among those looked at.
    /// - Complexity: Amortized O(1) per hit since the last call, plus `limit`.
    mutating func oldestHot(limit: Int, where isEligible: (CacheEntry<Key>) -> Bool) -> CacheEntry<Key>? {
        var cursor = hot.oldest
        var steps = 0
        while let entry = cursor, steps < limit {
            if entry.stamp != entry.listedStamp {
                // Hit since placed: every entry's stamp is at least its listed stamp, and the
                // list is sorted by listed stamp, so re-place it and look again from the tail.
                hot.remove(entry)
                entry.listedStamp = entry.stamp
                hot.insertOrdered(entry)
                cursor = hot.oldest
                steps = 0
                continue
            }
            if isEligible(entry) { return entry }
            cursor = entry.newer
            steps += 1
        }
        return nil
    }
}

/// Counters kept per shard under its lock (no shared cache line on the hit path).
@usableFromInline
struct ShardCounters {
    @usableFromInline var hotHits = 0
    var volatileHits = 0
    var misses = 0
    var droppedObjects = 0
    var droppedPages = 0
    var regenerations = 0
    var partialRegenerations = 0
    var regenerationFailures = 0
    var regenerationNanoseconds: Int64 = 0
    var evictions = 0
    /// Budget demotions only; sheds are counted cache-wide in `Totals`.
    var demotions = 0
}
