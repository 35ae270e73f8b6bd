public import Synchronization
import VolatileMemory

// The hot index: what a hot hit reads, without a lock.
//
// Design: per shard, an open-addressing table (linear probing) of atomic words, each 0
// (empty), 1 (tombstone) or the address of an immutable `HotRecord` (hash, key, base address,
// byte count). Only hot entries are published; everything else (misses, volatile, loading,
// demoting) is found under the shard lock in the shard's dictionary, as before.
//
// Why this table and not the alternatives the issue lists:
// - An RCU-published immutable table per shard would copy the shard's whole table on every
//   install, demotion and removal: O(n) per write, and a miss-heavy workload writes a lot.
// - Per-bucket sequence numbers (seqlock buckets) make readers retry on a concurrent write and
//   still need a way to keep the bytes alive: epochs are needed anyway, so the simplest
//   table that epochs make safe is enough.
// - A split-ordered list is built for lock-free *writers*; ours are serialized by the shard
//   lock, which every write path takes anyway for the policy lists.
// So: writers (under the shard lock) store record addresses with release; readers probe with
// acquire loads inside an epoch read section. A record is never changed after publication: a
// re-pin or revive publishes a new one. An unpublished record, a replaced table, and the
// extent behind a record are retired and freed (or demoted, or reused) only after a grace
// period, so a reader that found them keeps reading valid, unchanged bytes. The table grows
// (or is rebuilt without its tombstones) when live records plus tombstones pass half of it,
// so every probe ends at an empty word.
//
// Recency: a hit appends its entry's recency cell (the address in the record it found) to one
// stripe of the shard's read buffer. Each
// thread's epoch slot is given the stripe with the fewest live threads when the thread first
// reads a cache (`ReadEpochs`): up to `stripeCount` threads own a stripe each and write only
// its lines, with plain stores; further threads share stripes through an atomic add. A stripe is a ring of
// `slotsPerStripe` words and a tail counter; when a hit fills a lap of the ring, that thread
// tries the shard lock (tryLock: it never waits) and replays its stripe into the recency
// clock. What is lost, as in Caffeine: accesses overwritten when a stripe laps before it is
// drained (its thread lost the tryLock race `slotsPerStripe` hits in a row, or two threads
// share a stripe), and the order of the accesses within one drained stripe. Lost accesses
// only make an entry look older than it is to demotion and eviction; the hit counts are kept
// exactly (the tail counter is an atomic add).

/// What a lock-free hit reads: immutable after publication, freed after a grace period.
@usableFromInline
struct HotRecord<Key: Hashable & Sendable> {
    /// The entry's recency cell: a hit stores this address in its read-buffer stripe (the
    /// record's line is already in the reader's cache; the drain then reads only the cell).
    @usableFromInline let recency: UnsafeMutablePointer<EntryRecency>
    @usableFromInline let hash: Int
    @usableFromInline let key: Key
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let byteCount: Int
    /// Keeps the entry alive while the record lives (read only under the shard lock).
    let entry: CacheEntry<Key>

    init(recency: UnsafeMutablePointer<EntryRecency>, hash: Int, key: Key, base: UnsafeRawPointer, byteCount: Int, entry: CacheEntry<Key>) {
        self.recency = recency
        self.hash = hash
        self.key = key
        self.base = base
        self.byteCount = byteCount
        self.entry = entry
    }
}

/// Layout of a hot-index table: the mask on the first cache line, then the words.
@usableFromInline
enum HotIndexTable {
    @usableFromInline static var headerByteCount: Int { 64 }
    static var minimumCapacity: Int { 16 }

    static func allocate(capacity: Int) -> UnsafeMutableRawPointer {
        precondition(capacity >= minimumCapacity && capacity & (capacity - 1) == 0)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: headerByteCount + capacity * 8, alignment: 64)
        raw.storeBytes(of: capacity - 1, as: Int.self)
        let words = (raw + headerByteCount).bindMemory(to: Atomic<UInt>.self, capacity: capacity)
        for index in 0..<capacity { (words + index).initialize(to: Atomic(0)) }
        return raw
    }

    static func deallocate(_ raw: UnsafeMutableRawPointer) {
        let capacity = raw.load(as: Int.self) + 1
        (raw + headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self).deinitialize(count: capacity)
        raw.deallocate()
    }

    /// The first word to probe for a hash (the shard was picked from the hash's high bits).
    @inlinable @inline(__always)
    static func start(_ hash: Int, mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt(bitPattern: hash) &* 0xFF51_AFD7_ED55_8CCD) >> 17) & mask
    }
}

/// Layout of a shard's read buffer.
@usableFromInline
enum ReadBuffers {
    @usableFromInline static var stripeCount: Int { 8 }
    /// 64: a drain takes the shard lock and writes the shard's clock, lines that move between
    /// cores when threads hit keys of the same shard, so it should come rarely; 64 words keep
    /// a whole stripe set at 5 KiB a shard.
    @usableFromInline static var slotsPerStripe: Int { 64 }
    /// The tail counter alone on the first 64 bytes, the ring after it, rounded up to whole
    /// 128-byte blocks so that stripes never share a prefetched pair of lines.
    @usableFromInline static var stripeByteCount: Int { 640 }
    @usableFromInline static var ringOffset: Int { 64 }

    static func allocate() -> UnsafeMutableRawPointer {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: stripeCount * stripeByteCount, alignment: 128)
        for stripe in 0..<stripeCount {
            let base = raw + stripe * stripeByteCount
            base.bindMemory(to: Atomic<UInt>.self, capacity: 1).initialize(to: Atomic(0))
            let ring = (base + ringOffset).bindMemory(to: Atomic<UInt>.self, capacity: slotsPerStripe)
            for index in 0..<slotsPerStripe { (ring + index).initialize(to: Atomic(0)) }
        }
        return raw
    }

    static func deallocate(_ raw: UnsafeMutableRawPointer) {
        raw.deallocate()
    }

    @inlinable @inline(__always)
    static func tail(_ buffers: UnsafeMutableRawPointer, stripe: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (buffers + stripe * stripeByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    @inlinable @inline(__always)
    static func slot(_ buffers: UnsafeMutableRawPointer, stripe: Int, index: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (buffers + stripe * stripeByteCount + ringOffset + index * 8).assumingMemoryBound(to: Atomic<UInt>.self)
    }
}

extension HotRecord {
    /// Frees a record that `Retired` carried as a raw address.
    static func free(_ raw: UnsafeMutableRawPointer) {
        let record = raw.assumingMemoryBound(to: Self.self)
        record.deinitialize(count: 1)
        record.deallocate()
    }
}

/// Work that waits for a grace period (see `ReadEpochs.swift`). Not generic: a miss builds
/// arrays of it (and the ``Garbage`` that carries them), and in the cache's unspecialized
/// generic code each use of a generic enum looked its type metadata up at run time, about 12
/// look-ups of ~330 instructions per miss (callgrind, `volatile-bench --churn-child 1 1`). The
/// cache that retired the work gives the addresses and objects back their types
/// (`VolatileCache.perform(_:)`, `Reclaimer.discardAll()`).
enum Retired: @unchecked Sendable {  // Raw addresses owned by the retiring thread.
    /// An unpublished record, a `HotRecord<Key>` of its shard, a `CacheShard<Key>` (the
    /// shard's read buffers are drained before the record is freed, so no slot still holds its
    /// entry's recency cell when the record's hold on the entry goes).
    case record(UnsafeMutableRawPointer, shard: UnsafeMutableRawPointer)
    /// A replaced hot-index table.
    case table(UnsafeMutableRawPointer)
    /// A demotion (of a `CacheEntry<Key>` in that shard) claimed with this ticket: unpin the
    /// entry unless it was revived.
    case demotion(AnyObject, ticket: UInt64, shard: UnsafeMutableRawPointer, shedding: Bool)
    /// A removed hot entry (a `CacheEntry<Key>`): give up the cache's claim on its extent
    /// (freed now, or by the last counted hold).
    case removal(AnyObject)
}

extension ShardPointer {
    /// The published record for `key`, if it is hot. Call inside a read section.
    @inlinable @inline(__always)
    func findHot(_ key: HashedKey<Key>) -> UnsafeMutablePointer<HotRecord<Key>>? {
        let table = UnsafeMutableRawPointer(bitPattern: pointee.hotTable.load(ordering: .acquiring)).unsafelyUnwrapped
        let mask = table.load(as: Int.self)
        let words = (table + HotIndexTable.headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
        var index = HotIndexTable.start(key.hash, mask: mask)
        while true {
            let bits = (words + index).pointee.load(ordering: .acquiring)
            if bits == 0 { return nil }
            if bits != 1 {
                let record = UnsafeMutablePointer<HotRecord<Key>>(bitPattern: bits).unsafelyUnwrapped
                if record.pointee.hash == key.hash && record.pointee.key == key.key { return record }
            }
            index = (index &+ 1) & mask
        }
    }

    /// Appends a hit (the record's recency cell) to the thread's stripe (lossy, see the file comment). A thread alone on
    /// its stripe bumps the tail with a plain load and store; threads that share one use an
    /// atomic add, so the hit counts (the tails) stay exact.
    /// - Returns: True when the stripe just filled a lap: the caller should try to drain it.
    @inlinable @inline(__always)
    func recordHit(_ record: UnsafeMutablePointer<HotRecord<Key>>, slot: EpochSlotPointer) -> Bool {
        let buffers = pointee.buffers
        let stripe = slot.address.pointee.stripe
        let tailCounter = ReadBuffers.tail(buffers, stripe: stripe)
        let tail: UInt
        if slot.address.pointee.stripeIsExclusive.load(ordering: .relaxed) {
            tail = tailCounter.pointee.load(ordering: .relaxed)
            tailCounter.pointee.store(tail &+ 1, ordering: .relaxed)
        } else {
            tail = tailCounter.pointee.wrappingAdd(1, ordering: .relaxed).oldValue
        }
        let position = Int(truncatingIfNeeded: tail) & (ReadBuffers.slotsPerStripe - 1)
        ReadBuffers.slot(buffers, stripe: stripe, index: position).pointee.store(UInt(bitPattern: record.pointee.recency), ordering: .releasing)
        return position == ReadBuffers.slotsPerStripe - 1
    }

    /// Hot hits counted in the read buffer's tails (relaxed: a statistic).
    func bufferedHits() -> Int {
        var hits: UInt = 0
        for stripe in 0..<ReadBuffers.stripeCount {
            hits &+= ReadBuffers.tail(pointee.buffers, stripe: stripe).pointee.load(ordering: .relaxed)
        }
        return Int(truncatingIfNeeded: hits)
    }

    /// Replays buffered hits into the recency clock (under the shard lock).
    /// - Parameters:
    ///   - stripe: One stripe, or nil for every stripe that changed since its last drain.
    ///   - everything: Scan every word of every stripe (before records are freed: a slow
    ///     writer may have stored behind a tail that was already drained).
    func drain(stripe: Int?, everything: Bool = false, in state: inout ShardState<Key>, epoch: EpochPointer) {
        let first = stripe.map { $0 & (ReadBuffers.stripeCount - 1) } ?? 0
        let last = stripe.map { $0 & (ReadBuffers.stripeCount - 1) } ?? (ReadBuffers.stripeCount - 1)
        // Under LRU, entries among the newest quarter of the hot list keep their stamp (see
        // `ShardRecency.drain`); the adaptive policy reads a newer stamp as "accessed since
        // it entered its segment", which a skipped stamp would hide.
        let window = state.recency.sketch == nil ? UInt32(truncatingIfNeeded: state.hot.count >> 2) : 0
        state.recency.drain(pointee.buffers, stripes: first...last, everything: everything, epoch: epoch, window: window)
    }

    /// Publishes a record (under the shard lock), growing or rebuilding the table first if
    /// live records plus tombstones would pass half of it.
    func publish(_ record: UnsafeMutablePointer<HotRecord<Key>>, in state: inout ShardState<Key>, garbage: inout Garbage) {
        var table = UnsafeMutableRawPointer(bitPattern: pointee.hotTable.load(ordering: .relaxed))!
        var mask = table.load(as: Int.self)
        if (state.indexCount + state.indexTombstones + 1) * 2 > mask + 1 {
            var capacity = HotIndexTable.minimumCapacity
            while capacity < (state.indexCount + 1) * 4 { capacity <<= 1 }
            let rebuilt = HotIndexTable.allocate(capacity: capacity)
            let oldWords = (table + HotIndexTable.headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
            for index in 0...mask {
                let bits = (oldWords + index).pointee.load(ordering: .relaxed)
                guard bits > 1 else { continue }
                let hash = UnsafeMutablePointer<HotRecord<Key>>(bitPattern: bits)!.pointee.hash
                Self.insert(bits, hash: hash, into: rebuilt)
            }
            // Readers that loaded the old table keep probing it (it is retired, not freed).
            pointee.hotTable.store(UInt(bitPattern: rebuilt), ordering: .releasing)
            garbage.retired.append(.table(table))
            table = rebuilt
            mask = capacity - 1
            state.indexTombstones = 0
        }
        if Self.insert(UInt(bitPattern: record), hash: record.pointee.hash, into: table) { state.indexTombstones -= 1 }
        state.indexCount += 1
    }

    /// Stores `bits` in the first free word of the probe sequence.
    /// - Returns: True if it reused a tombstone.
    @discardableResult
    private static func insert(_ bits: UInt, hash: Int, into table: UnsafeMutableRawPointer) -> Bool {
        let mask = table.load(as: Int.self)
        let words = (table + HotIndexTable.headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
        var index = HotIndexTable.start(hash, mask: mask)
        while true {
            let current = (words + index).pointee.load(ordering: .relaxed)
            if current <= 1 {
                (words + index).pointee.store(bits, ordering: .releasing)
                return current == 1
            }
            index = (index &+ 1) & mask
        }
    }

    /// Unpublishes a record (under the shard lock): its word becomes a tombstone and the
    /// record is retired.
    func unpublish(_ record: UnsafeMutablePointer<HotRecord<Key>>, in state: inout ShardState<Key>, garbage: inout Garbage) {
        let table = UnsafeMutableRawPointer(bitPattern: pointee.hotTable.load(ordering: .relaxed))!
        let mask = table.load(as: Int.self)
        let words = (table + HotIndexTable.headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
        var index = HotIndexTable.start(record.pointee.hash, mask: mask)
        let bits = UInt(bitPattern: record)
        while true {
            let current = (words + index).pointee.load(ordering: .relaxed)
            precondition(current != 0, "unpublishing a record that is not in the hot index")
            if current == bits {
                (words + index).pointee.store(1, ordering: .releasing)
                break
            }
            index = (index &+ 1) & mask
        }
        state.indexCount -= 1
        state.indexTombstones += 1
        garbage.retired.append(.record(UnsafeMutableRawPointer(record), shard: UnsafeMutableRawPointer(address)))
    }

    /// Every published record (for the cache's deinit).
    func publishedRecords() -> [UnsafeMutablePointer<HotRecord<Key>>] {
        let table = UnsafeMutableRawPointer(bitPattern: pointee.hotTable.load(ordering: .relaxed))!
        let mask = table.load(as: Int.self)
        let words = (table + HotIndexTable.headerByteCount).assumingMemoryBound(to: Atomic<UInt>.self)
        return (0...mask).compactMap { index in
            let bits = (words + index).pointee.load(ordering: .relaxed)
            return bits > 1 ? UnsafeMutablePointer<HotRecord<Key>>(bitPattern: bits) : nil
        }
    }
}
