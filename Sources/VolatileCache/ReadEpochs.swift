#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import CVolatileShim
public import Synchronization
import VolatileSystem

// Epoch-based reclamation for the lock-free hot read path.
//
// Every thread that reads the hot index owns one *epoch slot*: a counter alone on its own
// 128-byte block, found through a `_Thread_local` pointer (CVolatileShim). Entering a read
// section makes the counter odd, leaving makes it even again; nested sections (a body that
// reads the cache again) only count depth. A reader writes nothing but its own slot.
//
// A writer that unpublishes something readers may still be using (a hot record, an old index
// table; the extent behind a record, which demotion or free would change) *retires* it: it
// takes a snapshot of every slot whose counter is odd and whose section reads the same cache
// (the slot carries the cache's tag; a section nested across caches counts for all), and the retired work runs once each of
// those counters has moved on (the slot left the section it was in). Nothing ever waits for a
// reader: a batch that is not yet safe is parked, and the next writer or the reader leaving
// its section runs it. So a writer inside a body (removeValue from a body) cannot deadlock on
// its own section.
//
// Memory ordering (Dekker through two sequentially consistent fences):
//   reader: slot = odd (relaxed); fence(seq_cst); load index slots / records
//   writer: store tombstone / new table; fence(seq_cst); load every slot
// One fence precedes the other in the total order. If the writer's comes first, the reader's
// loads see the unpublish and cannot reach the retired item. If the reader's comes first, the
// writer's snapshot sees the odd counter and waits for it to change. The reader leaves with a
// release store and the writer checks with acquire loads, so every read of the bytes in the
// section happens before the retired work (MADV_FREE, free, extent reuse) starts.
//
// Asymmetric variant (the default where the kernel has it): the reader's fence is the hit's
// one costly instruction, and grace periods are rare next to hits, so the writer pays for
// both, as userspace RCU's membarrier flavour does. The reader only stores its odd counter; the
// writer, after its fence, calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which returns
// once every running thread of the process has executed a full barrier (an idle thread's
// next entry is ordered by the context switch). For a reader that found the retired item,
// that barrier came after its odd store (had it come before, the reader's later loads would
// have seen the unpublish), so the writer's snapshot, taken after the system call, sees the
// odd counter. A failed system call leaves the grace period unstarted: the work is parked and
// the period started again by a later collection.

/// One thread's epoch slot.
@usableFromInline
struct EpochSlot: ~Copyable {
    /// Odd while the thread is inside a read section; +1 on every outermost entry and exit,
    /// never reset (a reused slot keeps counting, so "changed" stays meaningful).
    @usableFromInline let counter = Atomic<UInt64>(0)
    /// The cache the outermost section reads (``ReadEpochs/anyCache`` once a nested section
    /// reads another one): a grace period of one cache ignores sections of other caches.
    @usableFromInline let cache = Atomic<UInt>(0)
    /// Nesting depth; read and written only by the owning thread.
    @usableFromInline var depth = 0
    /// The read-buffer stripe this thread's hits go to (in every shard of every cache),
    /// assigned when a thread takes the slot: the stripe with the fewest live threads.
    @usableFromInline var stripe = 0
    /// Whether no other live thread shares ``stripe``: its tail is then bumped with a plain
    /// load and store instead of an atomic add. Written by other threads (under the registry
    /// lock) when they join or leave the stripe; read by the owner with relaxed loads.
    @usableFromInline let stripeIsExclusive = Atomic<Bool>(true)
    /// Whether a live thread owns the slot (released by the thread's TLS destructor).
    let owned = Atomic<Bool>(true)
    /// Whether entering a section needs its own sequentially consistent fence: false when
    /// writers make every running thread execute one through `membarrier(2)` instead (see
    /// ``ReadEpochs/writersBarrierEveryThread``). The same for every slot of the process.
    @usableFromInline let fencesOnEntry: Bool

    init(fencesOnEntry: Bool) { self.fencesOnEntry = fencesOnEntry }
}

/// A thread's slot address (slots are never freed: a finished thread's slot is reused).
@usableFromInline
struct EpochSlotPointer: @unchecked Sendable {  // Only the owning thread writes the slot's non-atomic field.
    @usableFromInline let address: UnsafeMutablePointer<EpochSlot>

    @inlinable init(_ address: UnsafeMutablePointer<EpochSlot>) { self.address = address }
}

/// A snapshot of the slots that were inside a read section when something was retired.
struct GracePeriod: Sendable {
    var busy: [(slot: EpochSlotPointer, counter: UInt64)]
    /// False when the barrier that must precede the snapshot failed (`membarrier` returned an
    /// error): nothing is known yet, the period has to be started again later.
    var isStarted = true

    /// Whether every slot inside a section at the snapshot has left it since.
    var hasElapsed: Bool {
        isStarted && busy.allSatisfy { $0.slot.address.pointee.counter.load(ordering: .acquiring) != $0.counter }
    }
}

/// The process's epoch slots.
@usableFromInline
enum ReadEpochs {
    /// Every slot ever registered; a finished thread's slot goes back to `free`.
    private static let registry = LockedValue<Registry>(Registry())

    /// The slots, and how many live threads each read-buffer stripe serves.
    private struct Registry {
        var all: [EpochSlotPointer] = []
        var free: [EpochSlotPointer] = []
        var stripeThreads = [Int](repeating: 0, count: ReadBuffers.stripeCount)

        /// Whether a thread other than the caller holds a live slot.
        var hasOtherLiveThread: Bool {
            let mine = vc_epoch_slot_get()
            return all.contains { $0.address.pointee.owned.load(ordering: .relaxed) && UnsafeMutableRawPointer($0.address) != mine }
        }

        /// Gives `slot` (just taken by a thread) the stripe with the fewest live threads.
        mutating func assignStripe(_ slot: EpochSlotPointer) {
            let stripe = stripeThreads.indices.min { stripeThreads[$0] < stripeThreads[$1] }!
            stripeThreads[stripe] += 1
            slot.address.pointee.stripe = stripe
            markStripe(stripe, exclusive: stripeThreads[stripe] == 1)
        }

        /// Takes a finished thread's slot off its stripe.
        mutating func releaseStripe(_ slot: EpochSlotPointer) {
            let stripe = slot.address.pointee.stripe
            stripeThreads[stripe] -= 1
            markStripe(stripe, exclusive: stripeThreads[stripe] == 1)
        }

        /// Tells the live threads of `stripe` whether they are alone on it. A thread that is
        /// told late (it is in the middle of a hit) may lose a tail increment to the newcomer:
        /// the hit statistics then miss that hit; the buffers are lossy anyway.
        private func markStripe(_ stripe: Int, exclusive: Bool) {
            for slot in all where slot.address.pointee.owned.load(ordering: .relaxed) && slot.address.pointee.stripe == stripe {
                slot.address.pointee.stripeIsExclusive.store(exclusive, ordering: .relaxed)
            }
        }
    }
    /// Releases the slot when its thread exits.
    private static let destructorKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { raw in
            guard let raw else { return }
            ReadEpochs.release(EpochSlotPointer(raw.assumingMemoryBound(to: EpochSlot.self)))
        }
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    /// Marks a section that reads more than one cache (it delays every cache's grace periods).
    @usableFromInline static var anyCache: UInt { 1 }

    /// Enters a read section of the cache tagged `cache` (nested sections only count depth).
    /// - Returns: The calling thread's slot, to pass to ``exit(_:)``.
    @inlinable @inline(__always)
    static func enter(cache: UInt) -> EpochSlotPointer {
        let slot: EpochSlotPointer
        if let raw = vc_epoch_slot_get() {
            slot = EpochSlotPointer(raw.assumingMemoryBound(to: EpochSlot.self))
        } else {
            slot = registerThisThread()
        }
        let depth = slot.address.pointee.depth
        slot.address.pointee.depth = depth &+ 1
        if depth == 0 {
            slot.address.pointee.cache.store(cache, ordering: .relaxed)
            let value = slot.address.pointee.counter.load(ordering: .relaxed) &+ 1
            // Release: a writer that sees the odd counter also sees the cache tag.
            slot.address.pointee.counter.store(value, ordering: .releasing)
            if slot.address.pointee.fencesOnEntry { atomicMemoryFence(ordering: .sequentiallyConsistent) }
        } else {
            let current = slot.address.pointee.cache.load(ordering: .relaxed)
            if current != cache && current != anyCache {
                // A nested section of another cache: widen the tag, with its own fence (the
                // same Dekker argument as for the counter).
                slot.address.pointee.cache.store(anyCache, ordering: .relaxed)
                if slot.address.pointee.fencesOnEntry { atomicMemoryFence(ordering: .sequentiallyConsistent) }
            }
        }
        return slot
    }

    /// Leaves a read section.
    /// - Returns: True when it was the outermost one (the thread is quiescent now).
    @inlinable @inline(__always)
    @discardableResult
    static func exit(_ slot: EpochSlotPointer) -> Bool {
        let depth = slot.address.pointee.depth &- 1
        slot.address.pointee.depth = depth
        guard depth == 0 else { return false }
        let value = slot.address.pointee.counter.load(ordering: .relaxed) &+ 1
        slot.address.pointee.counter.store(value, ordering: .releasing)
        return true
    }

    /// Collectors of caches with parked work, by tag: run when a section that read several
    /// caches ends (its thread may be what their grace periods wait for).
    private static let collectors = LockedValue<[UInt: @Sendable () -> Void]>([:])

    static func registerCollector(cache: UInt, _ collect: @escaping @Sendable () -> Void) {
        collectors.withLock { $0[cache] = collect }
    }

    static func unregisterCollector(cache: UInt) {
        _ = collectors.withLock { $0.removeValue(forKey: cache) }
    }

    /// Runs every registered collector (after a section nested across caches ended).
    @usableFromInline @inline(never)
    static func collectEverywhere() {
        for collect in collectors.withLock({ Array($0.values) }) { collect() }
    }

    /// Barriers still to fail (see ``injectBarrierFailures(count:)``).
    private static let injectedBarrierFailures = FaultCountdown()

    /// Makes the next `count` grace-period barriers fail as if `membarrier(2)` had returned an
    /// error, to test that the retired work waits and runs once a later barrier succeeds.
    /// Only builds with `-DVOLATILE_INTERNAL_CHECKS` look at it (as the arena's ENOMEM hook).
    package static func injectBarrierFailures(count: Int) {
        injectedBarrierFailures.arm(count)
    }

    private static func takeInjectedBarrierFailure() -> Bool {
        #if VOLATILE_INTERNAL_CHECKS
        injectedBarrierFailures.fire()
        #else
        false
        #endif
    }

    /// Whether the calling thread is inside a read section.
    static var isInsideSection: Bool {
        guard let raw = vc_epoch_slot_get() else { return false }
        return raw.assumingMemoryBound(to: EpochSlot.self).pointee.depth > 0
    }

    @usableFromInline @inline(never)
    static func registerThisThread() -> EpochSlotPointer {
        let key = destructorKey
        let slot: EpochSlotPointer = registry.withLock { registry in
            let slot: EpochSlotPointer
            if let reused = registry.free.popLast() {
                reused.address.pointee.owned.store(true, ordering: .relaxed)
                slot = reused
            } else {
                // Alone on a 128-byte block: no other thread's writes share its cache lines
                // (but for the rare stripe-sharing flag).
                let raw = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
                let address = raw.bindMemory(to: EpochSlot.self, capacity: 1)
                address.initialize(to: EpochSlot(fencesOnEntry: !writersBarrierEveryThread))
                slot = EpochSlotPointer(address)
                registry.all.append(slot)
            }
            registry.assignStripe(slot)
            return slot
        }
        vc_epoch_slot_set(UnsafeMutableRawPointer(slot.address))
        pthread_setspecific(key, UnsafeMutableRawPointer(slot.address))
        return slot
    }

    private static func release(_ slot: EpochSlotPointer) {
        // The thread is exiting: it is not inside a section (its counter is even).
        slot.address.pointee.depth = 0
        registry.withLock { registry in
            slot.address.pointee.owned.store(false, ordering: .relaxed)
            registry.releaseStripe(slot)
            registry.free.append(slot)
        }
    }

    /// Whether grace periods start with `membarrier(2)` (private expedited, Linux 4.14), so
    /// that readers need no fence of their own; decided once, before the first slot exists.
    /// `VOLATILE_READ_FENCES=1` in the environment keeps the reader-side fences (to compare
    /// the two, or where the system call is unwanted).
    static let writersBarrierEveryThread: Bool = {
        if let value = getenv("VOLATILE_READ_FENCES"), String(cString: value) == "1" { return false }
        if case .success = Syscall.registerPrivateExpeditedMembarrier() { return true }
        return false
    }()

    /// Starts a grace period for what the cache tagged `cache` unpublished: call it after
    /// unpublishing (the fence orders the unpublish before the snapshot, see the file comment).
    /// - Returns: The snapshot; not started (``GracePeriod/isStarted`` false) if the barrier
    ///   system call failed: start it again later.
    static func startGracePeriod(cache: UInt) -> GracePeriod {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return registry.withLock { registry in
            if writersBarrierEveryThread && registry.hasOtherLiveThread {
                // Readers did not fence: make every running thread execute a full barrier
                // now. A reader whose odd counter this does not reveal had not stored it yet,
                // so its later loads see what was unpublished (the file comment). Not needed
                // while the calling thread is the only one with a live slot: a thread that
                // registers later takes the registry lock first, after the unpublish.
                guard !takeInjectedBarrierFailure(), case .success = Syscall.privateExpeditedMembarrier() else {
                    return GracePeriod(busy: [], isStarted: false)
                }
            }
            var busy: [(slot: EpochSlotPointer, counter: UInt64)] = []
            for slot in registry.all {
                let counter = slot.address.pointee.counter.load(ordering: .acquiring)
                guard counter & 1 == 1 else { continue }
                // Read after the counter: the tag of that section or of a later one (then
                // that section is over, and ignoring it is right).
                let tag = slot.address.pointee.cache.load(ordering: .relaxed)
                if tag == cache || tag == anyCache { busy.append((slot, counter)) }
            }
            return GracePeriod(busy: busy)
        }
    }
}
