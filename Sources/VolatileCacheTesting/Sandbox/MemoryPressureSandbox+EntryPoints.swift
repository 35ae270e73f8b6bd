// Re-entering the current test binary at a named entry point.
//
// A Swift Testing binary built by `swift build --build-tests` runs only the tests matching
// `--testing-library swift-testing --filter <regex>`. The sandbox spawns /proc/self/exe with
// those arguments and VOLATILE_SANDBOX_ENTRY=<name>; the selected test function (the
// "dispatcher") calls `runEntryPointIfRequested`, which runs the named body and ends the process
// with exit(0) (or exit(1) on a thrown error), so the test harness's own output and exit status
// never mix with the entry point's. In a normal test run the variable is unset and the
// dispatcher returns at once.

import Glibc

extension MemoryPressureSandbox {
    /// The environment variable that names the entry point a re-entered test binary runs.
    public static let entryPointEnvironmentVariable = "VOLATILE_SANDBOX_ENTRY"

    /// A named body of code that a sandboxed child of the current test binary can run.
    public struct EntryPoint: Sendable {
        /// The name passed to ``SandboxCommand/entryPoint(_:testFilter:environment:)``.
        public var name: String
        /// The code the child runs; returning exits the child with status 0, throwing with 1.
        public var body: @Sendable () async throws -> Void

        /// Creates an entry point.
        ///
        /// - Parameters:
        ///   - name: A name unique among the entry points given to the dispatcher.
        ///   - body: The code the child runs. It may also call `exit` itself.
        public init(_ name: String, body: @escaping @Sendable () async throws -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// The entry point this process was started to run (`VOLATILE_SANDBOX_ENTRY`), or `nil`.
    public static var requestedEntryPoint: String? {
        getenv(entryPointEnvironmentVariable).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Runs the entry point named by `VOLATILE_SANDBOX_ENTRY` and exits the process; does
    /// nothing when the variable is unset.
    ///
    /// Call it from one test function (the dispatcher) that
    /// ``SandboxCommand/entryPoint(_:testFilter:environment:)``'s `testFilter` selects:
    ///
    /// ```swift
    /// @Test func sandboxEntryPoints() async {
    ///     await MemoryPressureSandbox.runEntryPointIfRequested([.allocateTwiceTheLimit])
    /// }
    /// ```
    ///
    /// - Parameter entryPoints: The entry points this binary offers.
    ///
    /// Returns only when no entry point was requested; otherwise the process exits with 0
    /// after the body returns, 1 when it throws, and 2 when no entry point has the name.
    public static func runEntryPointIfRequested(_ entryPoints: [EntryPoint]) async {
        guard let name = requestedEntryPoint else { return }
        guard let entryPoint = entryPoints.first(where: { $0.name == name }) else {
            writeToStandardError("volatile-sandbox: no entry point named \(name) (have \(entryPoints.map(\.name)))\n")
            exit(2)
        }
        do {
            try await entryPoint.body()
        } catch {
            writeToStandardError("volatile-sandbox: entry point \(name) threw \(error)\n")
            exit(1)
        }
        exit(0)  // flushes stdio; skips the harness's summary so the last output line is ours
    }

    private static func writeToStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
