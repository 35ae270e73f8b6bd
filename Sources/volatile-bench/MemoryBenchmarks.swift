import CVolatileShim
import VolatileMemory
#if canImport(Glibc)
import Glibc
#endif

/// Micro benchmarks of the memory layer, each beside the bare system operation it wraps,
/// on the same 1 MiB range.
enum MemoryBenchmarks {
    static let extentBytes = 1 << 20

    /// Holds an extent across closure calls (extents are ~Copyable).
    final class Holder {
        var pinned: PinnedExtent?
        var volatile: VolatileExtent?

        /// Pins the volatile extent.
        func pin() { pinned = try! volatile.take()!.pin().get() }
        /// Unpins the pinned extent.
        func unpin() { volatile = pinned.take()!.unpin() }
        /// The state a pin starts from.
        func unpinIfPinned() { if pinned != nil { unpin() } }
        /// The state an unpin starts from.
        func pinIfVolatile() { if pinned == nil { pin() } }
    }

    /// A 1 MiB extent filled with `fill`, unpinned, in a holder, in a new arena.
    /// - Returns: The arena, the holder and the extent's first byte.
    static func unpinnedExtent(
        _ strategy: DropDetectionStrategy, fill: Int32
    ) throws -> (arena: VolatileArena, holder: Holder, base: UnsafeMutableRawPointer) {
        let arena = try VolatileArena(configuration: .init(strategy: strategy, regionByteCount: 64 << 20))
        let holder = Holder()
        var first = try arena.allocate(byteCount: extentBytes)
        first.withUnsafeMutableBytes { _ = memset($0.baseAddress!, fill, $0.count) }
        let base = first.baseAddress
        holder.volatile = first.unpin()
        return (arena, holder, base)
    }

    /// A re-pin row: `pin()` of the holder's intact 1 MiB extent (unpinned again before each
    /// candidate sample) beside `baseline`, goal 1.3.
    static func repin(
        _ holder: Holder, _ name: String, strategy: String, vs baselineName: String, rounds: Int,
        baselineSetUp: () -> Void, baseline: () -> Void
    ) -> Row {
        compare(
            name, candidate: "pin() intact 1 MiB (\(strategy))", baseline: baselineName, rounds: rounds, goal: 1.3,
            candidateSetUp: { holder.unpinIfPinned() }, candidate: { holder.pin() }, baselineSetUp: baselineSetUp, baseline: baseline)
    }

    static func run(rounds: Int) throws -> [Row] {
        var results: [Row] = []

        // Re-pin of an intact 1 MiB extent, userfaultfd strategy, vs a bare MADV_POPULATE_WRITE.
        do {
            let (arena, holder, base) = try unpinnedExtent(.userfaultfd, fill: 0xA5)
            results.append(
                repin(holder, "repin_uffd_vs_populate", strategy: "userfaultfd", vs: "madvise(MADV_POPULATE_WRITE) 1 MiB", rounds: rounds,
                    // Same state as the candidate sees: pages lazily freed.
                    baselineSetUp: { holder.unpinIfPinned(); _ = madvise(base, extentBytes, vc_madv_free()) },
                    baseline: { _ = madvise(base, extentBytes, vc_madv_populate_write()) }))
            // The baseline's POPULATE_WRITE re-dirtied the volatile extent behind its back: harmless
            // (it only cancels the lazy free), and every candidate round starts with a real unpin.
            precondition(arena.statistics.droppedPins == 0, "benchmark range was dropped: measure on an idle machine")

            // Unpin of 1 MiB, userfaultfd strategy, vs a bare MADV_FREE.
            results.append(
                compare(
                    "unpin_vs_madvfree", candidate: "unpin() 1 MiB (userfaultfd)", baseline: "madvise(MADV_FREE) 1 MiB",
                    rounds: rounds, goal: 1.2,
                    setUp: { holder.pinIfVolatile() },
                    candidate: { holder.unpin() },
                    baselineSetUp: { _ = madvise(base, extentBytes, vc_madv_populate_write()) },
                    baseline: { _ = madvise(base, extentBytes, vc_madv_free()) }))
        }

        // Re-pin of an intact 1 MiB extent, canary strategy, vs a bare per-page atomic touch.
        do {
            let canary = try unpinnedExtent(.canary, fill: 0x5A)
            let holder = canary.holder
            let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
            // The baseline touches a separate mapping of its own, in the same lazily-freed state.
            let scratch = mmap(nil, extentBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            memset(scratch, 0x5A, extentBytes)
            results.append(
                repin(holder, "repin_canary_vs_touch", strategy: "canary", vs: "atomic touch of each page, 1 MiB", rounds: rounds,
                    baselineSetUp: { _ = madvise(scratch, extentBytes, vc_madv_free()) },
                    baseline: {
                        var page = scratch
                        for _ in 0..<(extentBytes / pageSize) {
                            vc_atomic_touch(page)
                            page += pageSize
                        }
                    }))
            munmap(scratch, extentBytes)
        }

        // Issue 12: the debug use-after-unpin trap (on by default in debug builds only), an
        // unpin + pin cycle with it beside the same cycle without it, at 1 MiB and 64 KiB.
        for byteCount in [extentBytes, 64 << 10] {
            let label = byteCount == extentBytes ? "1 MiB" : "64 KiB"
            var protected = VolatileArena.Configuration(strategy: .userfaultfd, regionByteCount: 64 << 20)
            protected.debugProtectsUnpinned = true
            let plain = VolatileArena.Configuration(strategy: .userfaultfd, regionByteCount: 64 << 20)
            let holders = [Holder(), Holder()]
            for (holder, configuration) in zip(holders, [protected, plain]) {
                var extent = try VolatileArena(configuration: configuration).allocate(byteCount: byteCount)
                extent.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0x3C, $0.count) }
                holder.pinned = consume extent
            }
            results.append(
                compare(
                    "debug_protect_cycle_\(byteCount >> 10)k", candidate: "unpin+pin \(label), debug-protected",
                    baseline: "unpin+pin \(label), unprotected", rounds: rounds, goal: nil,
                    candidate: { holders[0].pinned = try! holders[0].pinned.take()!.unpin().pin().get() },
                    baseline: { holders[1].pinned = try! holders[1].pinned.take()!.unpin().pin().get() }))
        }
        return results
    }
}
