import Testing
@testable import VolatileMemory
@_exported import VolatileTestSupport
@_exported import VolatileSystem

/// The arena configurations every strategy test runs under: each detection mechanism and
/// each fallback this kernel can be forced into.
enum Variant: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case userfaultfdFull
    case userfaultfdFullNoPrecheck
    case userfaultfdUserModeOnly
    case userfaultfdAtomicTouch
    case canary
    case canaryAtomicTouch

    var configuration: VolatileArena.Configuration {
        var configuration = VolatileArena.Configuration(regionByteCount: 64 << 20)
        switch self {
        case .userfaultfdFull:
            configuration.strategy = .userfaultfd
        case .userfaultfdFullNoPrecheck:
            configuration.strategy = .userfaultfd
            configuration.usesResidencyPrecheck = false
        case .userfaultfdUserModeOnly:
            configuration.strategy = .userfaultfd
            configuration.prefersUserModeOnlyUserfaultfd = true
        case .userfaultfdAtomicTouch:
            configuration.strategy = .userfaultfd
            configuration.allowsPopulateWrite = false
        case .canary:
            configuration.strategy = .canary
        case .canaryAtomicTouch:
            configuration.strategy = .canary
            configuration.allowsPopulateWrite = false
        }
        return configuration
    }

    /// The arena, or the test (case) skipped where the kernel lacks what the variant forces:
    /// user-mode-only userfaultfd needs Linux 5.11 (the kernel matrix runs 5.10).
    func makeArena() throws -> VolatileArena {
        if self == .userfaultfdUserModeOnly && KernelVersion.running < KernelVersion.userModeOnlyUserfaultfd {
            let reason = "kernel \(KernelVersion.running) lacks UFFD_USER_MODE_ONLY (Linux 5.11)"
            // Swift Testing's console output does not show a cancelled test case: say it here.
            print("Test case \(rawValue) of \(Test.current?.name ?? "?") skipped: \(reason)")
            try Test.cancel(Comment(rawValue: reason))
        }
        return try VolatileArena(configuration: configuration)
    }

    var testDescription: String { rawValue }
}

/// Holds a non-copyable extent where an array element or shared reference is needed.
final class Slot<Value: ~Copyable>: @unchecked Sendable {  // Each test confines a slot to one thread at a time.
    var value: Value?
    init(_ value: consuming Value) { self.value = consume value }
    init() { self.value = nil }
}
