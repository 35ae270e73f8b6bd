import Foundation
import Testing
@testable import VolatileMemory

/// Threads pin, verify every byte, regenerate what was dropped and unpin, while another
/// thread drops pages at random with real kernel drops. Any page dropped but not reported
/// would read as zeros where the generator never writes a zero page: a verification failure.
@Suite("Adversarial pinning under random drops")
struct AdversarialTests {
    struct Outcome: Sendable {
        var cycles = 0
        var intact = 0
        var droppedPins = 0
        var droppedPages = 0
        var verificationFailures = 0
        var pinErrors = 0
        var reallocations = 0
        /// What the first failures looked like (a zero page means an undetected drop).
        var failureDetails: [String] = []

        mutating func fail(_ detail: @autoclosure () -> String) {
            verificationFailures += 1
            if failureDetails.count < 8 { failureDetails.append(detail()) }
        }
    }

    /// One extent owned by one worker: its volatile value and its expected content.
    final class Item: @unchecked Sendable {  // Confined to the worker thread that owns it.
        var volatile: VolatileExtent?
        var expected: [UInt8]
        var version: UInt64 = 0
        init(volatile: consuming VolatileExtent, expected: [UInt8]) {
            self.volatile = consume volatile
            self.expected = expected
        }
    }

    /// `VOLATILE_ADVERSARIAL_CYCLE_DIVISOR=N` (1 to 100) runs 1/N of the cycles, but at least
    /// 2,000 per variant (enough for 100 raced drops): the kernel matrix sets it in emulated
    /// guests, which run 50 to 100 times slower than the host.
    static let cycleDivisor: Int = {
        let value = ProcessInfo.processInfo.environment["VOLATILE_ADVERSARIAL_CYCLE_DIVISOR"].flatMap { Int($0) } ?? 1
        return max(1, min(value, 100))
    }()

    static func content(seed: UInt64, byteCount: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        bytes.withUnsafeMutableBytes { fill($0, seed: seed) }
        return bytes
    }

    static func runWorker(arena: VolatileArena, worker: Int, cycles: Int) -> Outcome {
        var outcome = Outcome()
        var generator = SplitMix64(seed: UInt64(worker) &* 7919)
        let pageSize = arena.pageSize
        var items: [Item] = []
        for index in 0..<24 {
            let pages = 1 + index % 4
            let expected = content(seed: UInt64(worker << 20 | index), byteCount: pages * pageSize)
            guard var pinned = try? arena.allocate(byteCount: pages * pageSize) else {
                outcome.pinErrors += 1
                return outcome
            }
            pinned.withUnsafeMutableBytes { buffer in
                expected.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
            items.append(Item(volatile: pinned.unpin(), expected: expected))
        }
        let zeroPage = [UInt8](repeating: 0, count: pageSize)
        for _ in 0..<cycles {
            let item = items[Int(generator.next() % UInt64(items.count))]
            let outcomeOfPin = item.volatile.take()!.pin()
            var pinned: PinnedExtent
            switch consume outcomeOfPin {
            case .pinned(let extent): pinned = extent
            case .failed(let volatile, _):
                outcome.pinErrors += 1
                item.volatile = .some(volatile)
                continue
            }
            outcome.cycles += 1
            let dropped = Set(pinned.report.droppedPages)
            if dropped.isEmpty { outcome.intact += 1 } else {
                outcome.droppedPins += 1
                outcome.droppedPages += dropped.count
            }
            let report = pinned.report
            let fresh = report == .fresh
            pinned.withUnsafeMutableBytes { buffer in
                item.expected.withUnsafeBytes { expected in
                    zeroPage.withUnsafeBytes { zero in
                        for page in 0..<(buffer.count / pageSize) {
                            let actual = buffer.baseAddress! + page * pageSize
                            let wanted = expected.baseAddress! + page * pageSize
                            if fresh || dropped.contains(page) {
                                // Reported dropped: must read zero, then is regenerated.
                                if memcmp(actual, zero.baseAddress!, pageSize) != 0 {
                                    outcome.fail("page \(page) of \(buffer.count / pageSize) reported dropped (\(report)) but not zero")
                                }
                                memcpy(actual, wanted, pageSize)
                            } else if memcmp(actual, wanted, pageSize) != 0 {
                                let zeros = memcmp(actual, zero.baseAddress!, pageSize) == 0
                                outcome.fail("page \(page) of \(buffer.count / pageSize) reported intact (\(report)) but \(zeros ? "reads zero" : "differs")")
                            }
                        }
                    }
                }
            }
            // Now and then the object is freed and re-allocated (a recycled extent or fresh
            // pages), while drop injection may still hold a snapshot of the old range.
            if generator.next() % 16 == 0 {
                let zeroFilled = generator.next() % 2 == 0
                _ = consume pinned
                guard let replacement = try? arena.allocate(byteCount: item.expected.count, zeroFilled: zeroFilled) else {
                    outcome.pinErrors += 1
                    return outcome
                }
                pinned = replacement
                if zeroFilled && !pinned.withUnsafeBytes({ $0.allSatisfy { $0 == 0 } }) {
                    outcome.fail("zero-filled allocation of \(item.expected.count / pageSize) pages has stale bytes")
                }
                outcome.reallocations += 1
                pinned.withUnsafeMutableBytes { buffer in
                    item.expected.withUnsafeBytes { buffer.copyMemory(from: $0) }
                }
            }
            // Now and then the object changes: its content must follow, not an old copy.
            if generator.next() % 8 == 0 {
                item.version += 1
                item.expected = content(seed: item.version << 32 | generator.next() >> 32, byteCount: item.expected.count)
                pinned.withUnsafeMutableBytes { buffer in
                    item.expected.withUnsafeBytes { buffer.copyMemory(from: $0) }
                }
            }
            item.volatile = pinned.unpin()
        }
        return outcome
    }

    @Test(
        "No drop goes undetected while pages are dropped at random",
        arguments: [
            (Variant.userfaultfdFull, 100_000), (.userfaultfdUserModeOnly, 100_000), (.canary, 100_000),
            (.userfaultfdFullNoPrecheck, 20_000), (.userfaultfdAtomicTouch, 20_000), (.canaryAtomicTouch, 20_000),
        ].map { ($0.0, max(min($0.1, 2_000), $0.1 / cycleDivisor)) })
    func adversarial(variant: Variant, cycles: Int) throws {
        // For hunting rare races: VOLATILE_ADVERSARIAL_SCALE multiplies the cycles, and
        // VOLATILE_ADVERSARIAL_VARIANT (a Variant raw value) runs only that variant.
        let environment = ProcessInfo.processInfo.environment
        if let only = environment["VOLATILE_ADVERSARIAL_VARIANT"], only != variant.rawValue { return }
        let cycles = cycles * max(1, environment["VOLATILE_ADVERSARIAL_SCALE"].flatMap { Int($0) } ?? 1)
        let arena = try variant.makeArena()
        let workers = 2
        let done = LockedValue<Int>(0)
        let results = LockedValue<[Outcome]>([])
        let dropRounds = LockedValue<Int>(0)
        let group = DispatchGroup()
        for worker in 0..<workers {
            group.enter()
            Thread.detachNewThread {
                let outcome = Self.runWorker(arena: arena, worker: worker, cycles: cycles / workers)
                results.withLock { $0.append(outcome) }
                done.withLock { $0 += 1 }
                group.leave()
            }
        }
        group.enter()
        Thread.detachNewThread {
            var seed: UInt64 = 1
            while done.withLock({ $0 }) < workers {
                _ = try? arena.dropVolatilePages(fraction: 0.05, seed: seed)
                seed += 1
                dropRounds.withLock { $0 += 1 }
                usleep(50)
            }
            group.leave()
        }
        group.wait()
        let total = results.withLock { list in
            list.reduce(into: Outcome()) { sum, next in
                sum.cycles += next.cycles
                sum.intact += next.intact
                sum.droppedPins += next.droppedPins
                sum.droppedPages += next.droppedPages
                sum.verificationFailures += next.verificationFailures
                sum.pinErrors += next.pinErrors
                sum.reallocations += next.reallocations
                sum.failureDetails += next.failureDetails
            }
        }
        #expect(total.cycles == cycles / workers * workers)
        #expect(total.pinErrors == 0)
        #expect(total.verificationFailures == 0, "undetected drops or corruption: \(total.failureDetails)")
        // The test only means something if drops really raced with pins.
        #expect(total.droppedPins > 100, "too few drops injected: \(total.droppedPins)")
        #expect(total.intact > 100)
        #expect(dropRounds.withLock { $0 } > 0)
        #expect(total.reallocations > 0)
        let statistics = arena.statistics
        #expect(statistics.droppedPagesDetected == total.droppedPages)
        #expect(statistics.recycledReuses > 0, "reallocations never reused a recycled extent")
        arena.checkInvariants()
    }
}

import Synchronization
import VolatileSystem
