// Skip-or-fail policy for memory-pressure tests, and the Swift Testing trait that applies it.
//
// Swift Testing 6.3 can end a running test as skipped with `Test.cancel(_:)` (it throws, and the
// test is reported as cancelled with the comment). `.enabled(if:)` also skips, but it cannot
// fail instead when VOLATILE_REQUIRE_PRESSURE_TESTS=1, so the trait below is a TestScoping trait
// that decides when the test starts.

import Glibc
#if canImport(Testing)
public import Testing
#endif

/// Decides what a memory-pressure test does where the sandbox is unavailable: skip with the
/// reason, or fail when `VOLATILE_REQUIRE_PRESSURE_TESTS=1` (set it in CI, where pressure tests
/// must run).
public enum PressureTestPolicy {
    /// The variable that makes an unavailable sandbox a test failure instead of a skip.
    public static let requireEnvironmentVariable = "VOLATILE_REQUIRE_PRESSURE_TESTS"

    /// `true` when `VOLATILE_REQUIRE_PRESSURE_TESTS` is `1` (or `true`, `yes`).
    public static var requirePressureTests: Bool {
        isOn(getenv(requireEnvironmentVariable).map { String(cString: $0) })
    }

    /// Whether `environment` makes the pressure tests required. Only
    /// `VOLATILE_REQUIRE_PRESSURE_TESTS` counts: each switch covers its own tests, so
    /// `VOLATILE_REQUIRE_PYTHON_TESTS` (the PNG decoder's Python reference tests) leaves this off.
    ///
    /// - Parameter environment: Environment variables, as `ProcessInfo.processInfo.environment` gives them.
    /// - Returns: `true` when `VOLATILE_REQUIRE_PRESSURE_TESTS` is `1`, `true` or `yes`.
    public static func requirePressureTests(environment: [String: String]) -> Bool {
        isOn(environment[requireEnvironmentVariable])
    }

    private static func isOn(_ value: String?) -> Bool {
        value.map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
    }

    /// What a pressure test should do here.
    public enum Decision: Sendable, Hashable {
        /// Run: the sandbox is available.
        case run
        /// Skip, with this reason.
        case skip(reason: String)
        /// Fail, with this reason (the sandbox is unavailable but the tests are required).
        case fail(reason: String)
    }

    /// The decision for `availability` under `requirePressureTests`.
    ///
    /// - Parameters:
    ///   - availability: The sandbox's availability (defaults to the probed one).
    ///   - requirePressureTests: Whether unavailability is a failure (defaults to the environment).
    /// - Returns: Run, skip or fail.
    public static func decision(
        availability: MemoryPressureSandbox.Availability = MemoryPressureSandbox.availability,
        requirePressureTests: Bool = PressureTestPolicy.requirePressureTests
    ) -> Decision {
        switch availability {
        case .available: .run
        case .unavailable(let reason):
            requirePressureTests
                ? .fail(reason: "memory-pressure tests are required (\(requireEnvironmentVariable)=1) but the sandbox is unavailable: \(reason)")
                : .skip(reason: "memory-pressure sandbox unavailable: \(reason)")
        }
    }
}

#if canImport(Testing)
extension PressureTestPolicy {
    /// Returns a sandbox, or ends the current test: skipped (cancelled) with the reason where
    /// cgroups are unavailable, or failed when `VOLATILE_REQUIRE_PRESSURE_TESTS=1`.
    ///
    /// ```swift
    /// @Test func survivesPressure() async throws {
    ///     let sandbox = try PressureTestPolicy.sandboxOrSkip()
    ///     ...
    /// }
    /// ```
    ///
    /// - Parameter sourceLocation: Where the skip or failure is reported.
    /// - Returns: A usable sandbox.
    /// - Throws: Swift Testing's cancellation (a skip), or a
    ///   ``MemoryPressureSandboxError`` after recording the failure.
    public static func sandboxOrSkip(sourceLocation: SourceLocation = #_sourceLocation) throws -> MemoryPressureSandbox {
        switch decision() {
        case .run:
            return try MemoryPressureSandbox()
        case .skip(let reason):
            try Test.cancel(Comment(rawValue: reason), sourceLocation: sourceLocation)
        case .fail(let reason):
            Issue.record(Comment(rawValue: reason), sourceLocation: sourceLocation)
            throw MemoryPressureSandboxError.unavailable(reason: reason)
        }
    }
}

/// A test trait that skips the test where the memory-pressure sandbox is unavailable (or fails
/// it when `VOLATILE_REQUIRE_PRESSURE_TESTS=1`). Apply it with
/// `@Test(.requiresMemoryPressureSandbox)` or on a `@Suite`.
public struct MemoryPressureSandboxTrait: TestTrait, SuiteTrait, TestScoping {
    /// Applies to every test of a suite it is attached to.
    public var isRecursive: Bool { true }

    /// Runs `function` when the sandbox is available; otherwise cancels (skips) or fails the test.
    ///
    /// - Parameters:
    ///   - test: The test or suite.
    ///   - testCase: The test case, or `nil` for a suite.
    ///   - function: The test body.
    /// - Throws: Swift Testing's cancellation, or what `function` throws.
    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        switch PressureTestPolicy.decision() {
        case .run:
            try await function()
        case .skip(let reason):
            try Test.cancel(Comment(rawValue: reason), sourceLocation: test.sourceLocation)
        case .fail(let reason):
            Issue.record(Comment(rawValue: reason), sourceLocation: test.sourceLocation)
        }
    }
}

extension Trait where Self == MemoryPressureSandboxTrait {
    /// Skips the test where memory cgroups cannot be created (fails it when
    /// `VOLATILE_REQUIRE_PRESSURE_TESTS=1`), with the reason in the test report.
    public static var requiresMemoryPressureSandbox: Self { MemoryPressureSandboxTrait() }
}
#endif
