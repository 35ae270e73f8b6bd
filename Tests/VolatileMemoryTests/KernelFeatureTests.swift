import Glibc
import Testing
@testable import VolatileMemory

/// The running kernel's version, from uname (e.g. "5.10.0-32-amd64" → 5.10).
struct KernelVersion: Comparable, CustomStringConvertible, Sendable {
    var major: Int
    var minor: Int

    static let running: KernelVersion = {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return parse(release) ?? KernelVersion(major: 0, minor: 0)
    }()

    static func parse(_ release: String) -> KernelVersion? {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return nil }
        return KernelVersion(major: numbers[0], minor: numbers[1])
    }

    static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    var description: String { "\(major).\(minor)" }

    /// UFFD_USER_MODE_ONLY arrived in 5.11.
    static let userModeOnlyUserfaultfd = KernelVersion(major: 5, minor: 11)
    /// MADV_POPULATE_WRITE arrived in 5.14.
    static let populateWrite = KernelVersion(major: 5, minor: 14)
    /// MADV_PAGEOUT arrived in 5.4.
    static let pageout = KernelVersion(major: 5, minor: 4)
}

/// What the arena picks on the running kernel must match what that kernel offers: the kernel
/// matrix (Tests/KernelMatrix) runs these on 5.10, 6.1 and 6.18, where the fallbacks are real.
/// The first test prints the `KERNEL-FEATURES` line the matrix reports.
@Suite("Kernel features and fallbacks", .serialized)
struct KernelFeatureTests {
    @Test("the automatic arena reports its detection and populate method")
    func automaticArenaReportsWhatItPicked() throws {
        let arena = try VolatileArena(configuration: .init(regionByteCount: 4 << 20))
        let populate = arena.populateMethod == .populateWrite ? "native" : "touch"
        let detection = "\(arena.detection.mechanism)"
        print("KERNEL-FEATURES kernel=\(KernelVersion.running) detection=\(detection) populate=\(populate) reason=\"\(arena.detection.reason)\" populate_method=\"\(arena.populateMethod)\"")
        if getuid() == 0 {
            // Root is granted full userfaultfd on every kernel since 4.3 (unless seccomp says no).
            #expect(arena.detection.mechanism == .userfaultfd(.full), "\(arena.detection)")
        }
    }

    @Test("MADV_POPULATE_WRITE is used exactly where the kernel has it (5.14), with the reason otherwise")
    func populateMethodMatchesTheKernel() throws {
        let arena = try VolatileArena(configuration: .init(regionByteCount: 4 << 20))
        if KernelVersion.running >= KernelVersion.populateWrite {
            #expect(arena.populateMethod == .populateWrite)
        } else {
            guard case .atomicTouch(let reason) = arena.populateMethod else {
                Issue.record("kernel \(KernelVersion.running) lacks MADV_POPULATE_WRITE, but the arena uses it")
                return
            }
            #expect(reason.contains("5.14"), "the fallback's reason must name the missing feature: \(reason)")
        }
    }

    @Test("user-mode-only userfaultfd is granted from 5.11, and refused before with the feature named")
    func userModeOnlyMatchesTheKernel() throws {
        var configuration = VolatileArena.Configuration(regionByteCount: 4 << 20)
        configuration.strategy = .userfaultfd
        configuration.prefersUserModeOnlyUserfaultfd = true
        if KernelVersion.running >= KernelVersion.userModeOnlyUserfaultfd {
            let arena = try VolatileArena(configuration: configuration)
            #expect(arena.detection.mechanism == .userfaultfd(.userModeOnly))
        } else {
            #expect {
                _ = try VolatileArena(configuration: configuration)
            } throws: { error in
                guard case VolatileMemoryError.userfaultfdUnavailable(let reason) = error else { return false }
                return reason.contains("UFFD_USER_MODE_ONLY") && reason.contains("5.11")
            }
            // .automatic still works there: full mode as root, canaries otherwise.
            configuration.strategy = .automatic
            let arena = try VolatileArena(configuration: configuration)
            #expect(arena.detection.mechanism == .canary || arena.detection.mechanism == .userfaultfd(.full))
        }
    }

    @Test("every detection mechanism finds real kernel drops on this kernel", arguments: Variant.allCases)
    func everyMechanismDetectsRealDrops(variant: Variant) throws {
        guard KernelVersion.running >= KernelVersion.pageout else {
            try Test.cancel("kernel \(KernelVersion.running) lacks MADV_PAGEOUT (Linux 5.4): no deterministic drops")
        }
        let arena = try variant.makeArena()
        var pinned = try arena.allocate(byteCount: 16 * arena.pageSize)
        pinned.withUnsafeMutableBytes { fill($0, seed: 3) }
        let volatile = pinned.unpin()
        try volatile.dropPages([1, 7, 15])
        let repinned = try volatile.pin().get()
        #expect(repinned.report.droppedPages == [1, 7, 15], "\(variant) on \(KernelVersion.running)")
        repinned.withUnsafeBytes { bytes in
            let words = bytes.bindMemory(to: UInt64.self)
            let perPage = arena.pageSize / 8
            let intact = (0..<words.count).allSatisfy { index in
                [1, 7, 15].contains(index / perPage) ? words[index] == 0 : words[index] == expectedWord(seed: 3, index: index)
            }
            #expect(intact, "\(variant): intact pages changed or dropped pages not zero")
        }
    }

    @Test func parsesReleaseStrings() {
        #expect(KernelVersion.parse("5.10.0-32-amd64") == KernelVersion(major: 5, minor: 10))
        #expect(KernelVersion.parse("6.18.44-fc-v669") == KernelVersion(major: 6, minor: 18))
        #expect(KernelVersion.parse("4.19.0-27-amd64")! < KernelVersion.userModeOnlyUserfaultfd)
        #expect(KernelVersion.parse("garbage") == nil)
    }
}
