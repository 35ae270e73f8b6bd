public import Synchronization
import VolatileMemory
import VolatileSystem

/// A cache's retired work waiting for grace periods. Nothing waits on it: work that is safe
/// runs at once on the retiring thread; the rest is parked and run by the next thread that
/// retires something or leaves its outermost read section while work is parked.
@usableFromInline
final class Reclaimer<Key: Hashable & Sendable>: Sendable {
    /// Parked batches (read by readers as they leave a section: a line written only when
    /// batches are parked or run).
    @usableFromInline let parkedCount = Atomic<Int>(0)
    /// The cache's tag in epoch slots (this object's address: unique while the cache lives).
    @usableFromInline var tag: UInt { UInt(bitPattern: ObjectIdentifier(self)) }
    private let parked = LockedValue<[(grace: GracePeriod, work: [Retired])]>([])

    init() {}

    /// Starts a grace period for `work` (already unpublished by the caller) and runs it now if
    /// no reader can be using it, else parks it. Call with no cache lock held.
    func retire(_ work: [Retired], cache: VolatileCache<Key>) {
        if !work.isEmpty {
            let grace = ReadEpochs.startGracePeriod(cache: tag)
            if grace.isStarted && grace.busy.isEmpty {
                cache.perform(work)
            } else {
                parked.withLock { $0.append((grace, work)) }
                parkedCount.add(1, ordering: .sequentiallyConsistent)
                ReadEpochs.registerCollector(cache: tag) { [weak cache] in cache?.collectRetired() }
            }
        }
        if parkedCount.load(ordering: .relaxed) > 0 { collect(cache: cache) }
    }

    /// Runs the parked batches whose grace period has elapsed (skipped if another thread is
    /// collecting right now).
    func collect(cache: VolatileCache<Key>) {
        guard !ReadEpochs.isInsideSection else { return }
        let tag = self.tag
        let ready: [[Retired]]? = parked.withLockIfAvailable { parked in
            var ready: [[Retired]] = []
            var index = 0
            while index < parked.count {
                // A period whose barrier failed starts now (the work was unpublished before).
                if !parked[index].grace.isStarted { parked[index].grace = ReadEpochs.startGracePeriod(cache: tag) }
                if parked[index].grace.hasElapsed {
                    ready.append(parked.remove(at: index).work)
                } else {
                    index += 1
                }
            }
            return ready
        }
        guard let ready, !ready.isEmpty else { return }
        parkedCount.subtract(ready.count, ordering: .relaxed)
        for work in ready { cache.perform(work) }
    }

    /// Drops every parked batch (the cache's deinit: no reader can exist). Records are freed.
    func discardAll() {
        let all = parked.withLock { parked in
            defer { parked = [] }
            return parked
        }
        for batch in all {
            for item in batch.work {
                switch item {
                case .record(let record, _):
                    HotRecord<Key>.free(record)
                case .table(let table):
                    HotIndexTable.deallocate(table)
                case .demotion, .removal:
                    break
                }
            }
        }
    }
}

extension VolatileCache {
    /// Leaves a lock-free read section, and runs parked work if there is some.
    @inlinable @inline(__always)
    func leaveReadSection(_ slot: EpochSlotPointer) {
        guard ReadEpochs.exit(slot) else { return }
        if reclaimer.parkedCount.load(ordering: .relaxed) > 0 { collectRetired() }
        // A section nested across caches may be what other caches' parked work waits for.
        if slot.address.pointee.cache.load(ordering: .relaxed) == ReadEpochs.anyCache { ReadEpochs.collectEverywhere() }
    }

    @usableFromInline @inline(never)
    func collectRetired() {
        reclaimer.collect(cache: self)
    }

    /// Runs retired work whose grace period is over (no lock held by the caller).
    func perform(_ work: [Retired]) {
        var records: [UnsafeMutableRawPointer] = []
        var shardsToDrain: [UnsafeMutableRawPointer] = []
        for item in work {
            switch item {
            case .record(let record, let shard):
                records.append(record)
                if !shardsToDrain.contains(shard) { shardsToDrain.append(shard) }
            case .table(let table):
                HotIndexTable.deallocate(table)
            case .demotion(let object, let ticket, let shard, let shedding):
                finishDemotion(
                    unsafeDowncast(object, to: CacheEntry<Key>.self), ticket: ticket, in: ShardPointer(raw: shard), shedding: shedding)
            case .removal(let object):
                let entry = unsafeDowncast(object, to: CacheEntry<Key>.self)
                // No lock-free reader is left; counted holds decide who frees the extent.
                if entry.holds.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue == 0 {
                    freeDetached(entry)
                }
            }
        }
        guard !records.isEmpty else { return }
        // A record's address may still sit in its shard's read buffer: empty the buffers
        // (every word) before the record is freed. No new copy can appear: every reader
        // that found the record has left its section.
        let epoch = shards.epoch
        for address in shardsToDrain {
            let shard = ShardPointer<Key>(raw: address)
            shard.pointee.state.withLock { state in shard.drain(stripe: nil, everything: true, in: &state, epoch: epoch) }
        }
        for record in records { HotRecord<Key>.free(record) }
    }

    /// The second half of a demotion, after its grace period: the unpin (MADV_FREE), outside
    /// the lock, unless the entry was revived or removed meanwhile.
    private func finishDemotion(_ entry: CacheEntry<Key>, ticket: UInt64, in shard: ShardPointer<Key>, shedding: Bool) {
        let flight = Flight()
        var garbage = Garbage()
        let taken: PinnedExtent? = shard.pointee.state.withLock { state in
            if entry.isRemoved, entry.phase == .demoting, entry.demotionTicket == ticket, let extent = entry.pinned.take() {
                // Removed while demoting, and this is the latest claim (an older claim's grace
                // period does not cover readers of the record a revive published since): no
                // reader is left, free it.
                garbage.add(extent)
                return nil
            }
            return entry.beginUnpin(ticket: ticket, flight: flight)
        }
        dispose(&garbage)
        guard let extent = taken else { return }
        // The entry is busy: only this thread touches its extent fields until the lock below.
        let footprint = entry.footprint
        // Issue 9: volatile, or kept swappable (ordinary memory)? Sheds are always volatile.
        var demoted: Demoted?
        if !shedding, demotionKind(for: entry) == .swappable {
            demoted = .swappable(extent)
        } else {
            demoted = .volatile(extent.unpin())
        }
        shard.pointee.state.withLock { state in
            guard !entry.isRemoved else {
                entry.flight = nil
                demoted.take()!.discard(into: &garbage)
                return
            }
            let made = demoted.take()!
            switch consume made {
            case .swappable(let kept):
                entry.finishKeepingSwappable(kept, in: &state)
                markEvictionFloorStale(shard)
                state.counters.demotions += 1
                volatilityState.advisor.withLock { $0.didMakeSwappable(bytes: footprint) }
            case .volatile(let volatile):
                entry.finishUnpin(volatile, in: &state)
                markEvictionFloorStale(shard)
                if !shedding { state.counters.demotions += 1 }
                totals.volatileBytes.add(footprint, ordering: .relaxed)
            }
        }
        dispose(&garbage)
        flight.finish(.ready)
    }
}

/// What a demotion made of an entry's extent: kept as ordinary memory (swappable), or unpinned.
private enum Demoted: ~Copyable {
    case swappable(PinnedExtent)
    case volatile(VolatileExtent)

    /// Hands the extent to `garbage` (the entry was removed meanwhile).
    consuming func discard(into garbage: inout Garbage) {
        switch consume self {
        case .swappable(let extent): garbage.add(extent)
        case .volatile(let extent): garbage.add(extent)
        }
    }
}
