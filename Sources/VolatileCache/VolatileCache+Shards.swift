public import Synchronization
import VolatileSystem

// The shard table: one raw allocation holding the recency epoch and the lock shards, each on
// its own 128-byte-aligned block (two cache lines, so neither a neighbour's lock word nor the
// adjacent-line prefetcher makes two shards ping-pong). Reached through a plain pointer: no
// reference count is touched on the hit path.
//
// Recency clock. Each shard keeps its own counter under its lock; an access stamps its entry
// with `max(shard clock, epoch) + 1` when it is replayed from the read buffer (or at once, for
// a locked access). The global epoch is raised (an atomic `max`) by every install and by every
// 64th stamp of a shard, and read with a relaxed load. Lock-free hits never stamp: they only
// write their read-buffer stripe (see `VolatileCache+HotIndex.swift`). Within a shard the stamps are exact LRU
// order; across shards they are a Lamport-style clock, so two accesses in different shards
// compare in the wrong order only when they are within about 64 hits of one shard of each other.

/// One shard: the locked state (key table, lists, counters) and the lock-free part that hot
/// hits read (the hot index) and write (the read-buffer stripes).
@usableFromInline
struct CacheShard<Key: Hashable & Sendable>: ~Copyable {
    let state: LockedValue<ShardState<Key>>
    /// The current hot-index table's address (see ``HotIndexTable``); replaced under the
    /// shard lock, the old one retired.
    @usableFromInline let hotTable: Atomic<UInt>
    /// ``ReadBuffers/stripeCount`` stripes of ``ReadBuffers/stripeByteCount`` bytes.
    @usableFromInline let buffers: UnsafeMutableRawPointer

    init() {
        state = LockedValue(ShardState<Key>())
        hotTable = Atomic(UInt(bitPattern: HotIndexTable.allocate(capacity: HotIndexTable.minimumCapacity)))
        buffers = ReadBuffers.allocate()
    }

    deinit {
        HotIndexTable.deallocate(UnsafeMutableRawPointer(bitPattern: hotTable.load(ordering: .relaxed))!)
        ReadBuffers.deallocate(buffers)
    }
}

/// A shard's address in the table.
@usableFromInline
struct ShardPointer<Key: Hashable & Sendable>: @unchecked Sendable {  // Points at a shard: its state is behind its lock or atomics.
    @usableFromInline let address: UnsafeMutablePointer<CacheShard<Key>>

    @inlinable
    init(_ address: UnsafeMutablePointer<CacheShard<Key>>) { self.address = address }

    /// A shard that `Retired` carried as a raw address.
    init(raw: UnsafeMutableRawPointer) { address = raw.assumingMemoryBound(to: CacheShard<Key>.self) }

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
struct ShardTable<Key: Hashable & Sendable>: @unchecked Sendable {  // Immutable after init; each shard's state is behind its lock or atomics.
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

    /// The index of a shard of this table.
    func index(of shard: ShardPointer<Key>) -> Int {
        (UnsafeMutableRawPointer(shard.address) - (base + Self.blockSize)) / stride
    }

    /// The global recency epoch (alone on the table's first block).
    @inlinable
    var epoch: EpochPointer {
        EpochPointer(base.assumingMemoryBound(to: Atomic<UInt64>.self))
    }

    /// The shards' indices: loops over the shards iterate these (`shards[index]`). An array
    /// of the shards, built in unspecialized generic code, cost about 20k instructions per
    /// eviction scan (generic metadata look-ups and protocol witnesses), a fifth of a
    /// 256-byte miss with a count limit (callgrind, `volatile-bench --churn-child 1 1`).
    var indices: Range<Int> { 0..<count }
}

struct ShardState<Key: Hashable & Sendable> {
    /// The shard's entries, each held by a strong reference (locked look-ups only: hot hits
    /// go through the hot index). Keyed by ``HashedKey``: the key is hashed once per access.
    var entries: [HashedKey<Key>: CacheEntry<Key>] = [:]
    /// Records published in the hot index table, and tombstones left in it.
    var indexCount = 0
    var indexTombstones = 0
    /// The shard's recency clock and read-buffer bookkeeping (not generic: drains use it
    /// without type metadata).
    var recency = ShardRecency()
    var counters = ShardCounters()
    /// Hot entries ordered by ``CacheEntry/listedStamp`` (hits do not move them). Every entry
    /// readers hold is here (or removed): see ``pinnedBytes``.
    var hot = EntryList<Key>()
    /// Volatile entries ordered by stamp (they get no hits, so it never goes stale).
    var volatile = EntryList<Key>()
    /// The adaptive policy's segments (see `VolatileCache+Segments.swift`); empty under LRU.
    var segments = ShardSegments<Key>()

    /// The entry for `key`.
    func entry(for key: HashedKey<Key>) -> CacheEntry<Key>? {
        entries[key]
    }

    /// Stores a new entry under `key` (its key, hashed by the caller).
    mutating func store(_ entry: CacheEntry<Key>, at key: HashedKey<Key>) {
        precondition(entries[key] == nil)
        entries[key] = entry
    }

    /// A stamp for an access now (see the file comment). `publish` raises the global epoch.
    mutating func nextStamp(epoch: EpochPointer, publish: Bool) -> UInt64 {
        recency.nextStamp(epoch: epoch, publish: publish)
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

/// A shard's recency clock (under its lock).
struct ShardRecency {
    /// The shard's clock (see the file comment).
    var clock: UInt64 = 0
    /// Stamps since the shard last raised the global epoch.
    var unpublished: UInt64 = 0
    /// Each read-buffer stripe's tail when it was last drained (drains skip unchanged stripes).
    var drainedTails = [UInt](repeating: 0, count: ReadBuffers.stripeCount)

    /// Stamps written by this shard's drains (wrapping): the positions that the drain's
    /// recency window counts in (see ``drain(_:stripes:everything:epoch:window:)``). It
    /// starts half a lap away from an entry's initial ``EntryRecency/drainWrite`` (0), so an
    /// entry no drain has stamped yet is outside every window.
    var drainWrites: UInt32 = 1 << 31

    /// A stamp for an access now (see the file comment). `publish` raises the global epoch.
    mutating func nextStamp(epoch: EpochPointer, publish: Bool) -> UInt64 {
        let stamp = Swift.max(clock, epoch.load()) &+ 1
        advanceClock(to: stamp, stamps: 1, epoch: epoch, publish: publish)
        return stamp
    }

    /// Moves the clock to `now`, after `stamps` stamps were given since it was last read; the
    /// global epoch is raised on `publish` and every 64 stamps (the one place for that rule).
    private mutating func advanceClock(to now: UInt64, stamps: UInt64, epoch: EpochPointer, publish: Bool) {
        clock = now
        unpublished &+= stamps
        if publish || unpublished >= 64 {
            unpublished = 0
            epoch.raise(to: now)
        }
    }

    /// The shard's access-frequency sketch (``CachePolicy/adaptive`` only; nil under LRU).
    /// Fed here, by drains and locked accesses, never by a lock-free hit; per shard, so it
    /// is written only under this shard's lock and a key's counters live in its own shard.
    var sketch: FrequencySketch?

    /// Records one access in the sketch, if the policy keeps one. Out of line, so that the
    /// LRU drain loop, which calls it only under the adaptive policy, stays small.
    @inline(never)
    mutating func recordAccess(hash: Int) {
        if sketch != nil { sketch!.increment(hash: UInt64(bitPattern: Int64(hash))) }
    }

    /// The sketch's estimate of recent accesses (0 under LRU).
    func frequency(hash: Int) -> Int {
        sketch?.frequency(hash: UInt64(bitPattern: Int64(hash))) ?? 0
    }

    /// Grows the sketch when the shard holds more keys than it has words (it starts at 32
    /// words: 320 accesses of the shard between halvings). Growing forgets the counts; it
    /// happens at powers of two only.
    ///
    /// The aging period (ten accesses per word) is a trade-off, measured with
    /// `volatile-policy-sim --cache` and `AdaptivePolicyTests`. Before the segments (issue 15,
    /// global least-dense eviction), 16 words lifted the equal-size Zipf workloads by 1-4
    /// points but a sized workload fell from 86 % to 78 % hits, and a one-time sweep halved the
    /// frequent keys' counts down to its own. With the segments (protected shields the frequent
    /// keys, TinyLFU compares only old entries), 32 words gave 97.0 % of the optimum on Zipf
    /// 1.0 against 95.8-96.7 % with 64 and 94.2 % with 256, and no change with sizes (89.5 %).
    mutating func noteEntryCount(_ count: Int) {
        if sketch != nil && count > sketch!.capacity { sketch!.ensureCapacity(count * 2) }
    }

    /// Replays buffered hits of a shard's stripes into this clock (and the sketch).
    /// - Parameter window: An entry that one of the shard's last `window` drain writes
    ///   stamped is not stamped again: its stamp is already among the shard's newest, and
    ///   skipping the write keeps its recency cell's cache line shared when several cores hit
    ///   the same hot entries (under Zipf traffic most drained hits are of such entries).
    ///   The window counts the shard's own writes, not clock ticks: the clock also jumps to
    ///   the global epoch, which every shard raises, so a window in ticks shrinks with the
    ///   shard count (it almost never applied with 16 shards). The lag is bounded: a skipped
    ///   entry is among the newest `window` stamped by drains, and once `window` other writes
    ///   have passed it, its next hit stamps it. Demotion takes the oldest entries, so the lag
    ///   never changes its choice while `window` is small next to the hot list (the caller
    ///   passes a quarter of it under LRU; 0, exact stamps, where a policy reads stamps as
    ///   "accessed since" marks). With an eighth, 40 % of drained hits still wrote their
    ///   cell in `volatile-bench --scaling-probe` (a drain of 64 hits writes ~25 distinct
    ///   entries, more than the window); with a quarter 26 %, with a half 14 %.
    mutating func drain(_ buffers: UnsafeMutableRawPointer, stripes: ClosedRange<Int>, everything: Bool, epoch: EpochPointer, window: UInt32 = 0) {
        let counting = sketch != nil
        // The clock in a local, the epoch read once: a drain's stamps are consecutive ticks
        // after `max(clock, epoch)`, as `nextStamp` would give them one by one.
        var now = Swift.max(clock, epoch.load())
        let start = now
        for stripe in stripes {
            let tail = ReadBuffers.tail(buffers, stripe: stripe).pointee.load(ordering: .relaxed)
            if !everything && tail == drainedTails[stripe] { continue }
            drainedTails[stripe] = tail
            let ring = ReadBuffers.slot(buffers, stripe: stripe, index: 0)
            for index in 0..<ReadBuffers.slotsPerStripe {
                // A plain load and store, not an exchange (a locked instruction per hit): a
                // hit stored between the two is lost, which the buffers allow. A slot holds the
                // recency cell of an entry whose record the hit found; the cell lives as long
                // as the entry, which a record keeps alive. No cell of a freed entry can be
                // here: a record is freed only after its grace period, when every hit that
                // found it has finished its store, and after an `everything` drain has
                // cleared every slot.
                let bits = ring[index].load(ordering: .acquiring)
                guard let recency = UnsafeMutablePointer<EntryRecency>(bitPattern: bits) else { continue }
                ring[index].store(0, ordering: .relaxed)
                // Wrapping distance: after 2^32 writes an entry may look recent once more,
                // which only delays its next stamp by at most `window` writes.
                if recency.pointee.isHotListed && drainWrites &- recency.pointee.drainWrite >= window {
                    now &+= 1
                    drainWrites &+= 1
                    recency.pointee.stamp = now
                    recency.pointee.drainWrite = drainWrites
                }
                if counting { recordAccess(hash: recency.pointee.hash) }
            }
        }
        guard now != start else { return }
        advanceClock(to: now, stamps: now &- start, epoch: epoch, publish: false)
    }
}

/// Counters kept per shard under its lock (lock-free hot hits are counted in their read-buffer
/// stripes instead).
struct ShardCounters {
    /// Hot hits taken under the lock (counted holds: `pinnedValue`, async access).
    var hotHits = 0
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
