import Foundation
import Synchronization
import Testing
import VolatileSystem
@testable import VolatileMemory

/// The user-mode-only pin is a loop (populate; on EFAULT record and map the absent pages with
/// mincore + UFFDIO_ZEROPAGE; populate again), so unlike the one-step mechanisms it has
/// windows between its system calls. These tests drop pages with real kernel drops exactly in
/// those windows, through the arena's race hook, instead of hoping a random injector hits them.
@Suite(
    "User-mode-only userfaultfd: drops between the populate loop's steps",
    .enabled(
        if: KernelVersion.running >= KernelVersion.populateWrite,
        "kernel \(KernelVersion.running) lacks UFFD_USER_MODE_ONLY (Linux 5.11) or MADV_POPULATE_WRITE (Linux 5.14)")
)
struct UserModeOnlyRaceTests {
    /// Whether any swap area is active now (/proc/swaps lists more than its header).
    static func swapIsOn() -> Bool {
        let swaps = (try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? ""
        return swaps.split(separator: "\n").count > 1
    }

    static func makeArena() throws -> VolatileArena {
        var configuration = Variant.userfaultfdUserModeOnly.configuration
        // Without the pre-check the first populate meets the dropped page itself (EFAULT).
        configuration.usesResidencyPrecheck = false
        return try VolatileArena(configuration: configuration)
    }

    @Test("A page dropped after EFAULT or after the absent pages were mapped is reported, and pages before the fault stay")
    func dropsBetweenRoundsAreReported() throws {
        let arena = try Self.makeArena()
        guard case .userfaultfd(.userModeOnly) = arena.detection.mechanism, arena.populateMethod == .populateWrite else {
            Issue.record("needs UFFD_USER_MODE_ONLY and MADV_POPULATE_WRITE: \(arena.detection), \(arena.populateMethod)")
            return
        }
        let pages = 8
        let pageSize = arena.pageSize
        var pinned = try arena.allocate(byteCount: pages * pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 91) }
        let base = UInt(bitPattern: pinned.baseAddress)
        let volatile = pinned.unpin()
        #expect(try volatile.dropPages([2]) == 1)

        struct Seen { var points: [VolatileArena.PopulateRacePoint] = []; var gone: [Int: Int] = [:] }
        let seen = LockedValue(Seen())
        let dropPage: @Sendable (Int) -> Int = { [unowned arena] page in
            let address = UnsafeMutableRawPointer(bitPattern: base)!
            return (try? arena.pageOutUntilGone(address, pageCount: pages, pages: [page])) ?? -1
        }
        arena.populateRaceHook.withLock {
            $0 = { point in
                var gone: [Int: Int] = [:]
                switch point {
                case .afterFault(round: 1):
                    // Populate stopped at page 2: page 1 was re-dirtied (cannot be dropped any
                    // more), page 5 was not (dropped before mincore looks).
                    gone[1] = dropPage(1)
                    gone[5] = dropPage(5)
                case .beforeRetry(round: 1):
                    // Resident when mincore looked, so neither recorded nor mapped: the next
                    // populate must stop at it and the next round must record it.
                    gone[6] = dropPage(6)
                default:
                    break
                }
                seen.withLock { $0.points.append(point); $0.gone.merge(gone) { $1 } }
            }
        }
        let repinned = try volatile.pin().get()
        arena.populateRaceHook.withLock { $0 = nil }
        let observed = seen.withLock { $0 }

        // Page 1 was re-dirtied: without swap MADV_PAGEOUT cannot take it. With swap on (another
        // test or process may turn it on) it can be swapped out, which keeps its content: the
        // report and content checks below hold either way.
        #expect(observed.gone[5] == 1 && observed.gone[6] == 1, "pages 5 and 6 must go: \(observed.gone)")
        #expect(observed.gone[1] == 0 || Self.swapIsOn(), "page 1 (re-dirtied) was dropped with no swap on")
        #expect(observed.points == [.afterFault(round: 1), .beforeRetry(round: 1), .afterFault(round: 2), .beforeRetry(round: 2)])
        #expect(repinned.report == .dropped(pages: [2, 5, 6]))
        repinned.withUnsafeBytes { bytes in
            for page in 0..<pages {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[page * pageSize..<(page + 1) * pageSize])
                let words = slice.bindMemory(to: UInt64.self)
                if [2, 5, 6].contains(page) {
                    #expect(words.allSatisfy { $0 == 0 }, "dropped page \(page) does not read zero")
                } else {
                    let first = page * pageSize / 8
                    let intact = words.indices.allSatisfy { words[$0] == expectedWord(seed: 91, index: first + $0) }
                    #expect(intact, "page \(page) reported intact but its content changed")
                }
            }
        }
        #expect(arena.statistics.droppedPagesDetected == 3)
    }
}
