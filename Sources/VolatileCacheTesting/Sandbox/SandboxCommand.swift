import Glibc
import VolatileSystem

/// What a ``MemoryPressureSandbox`` runs: an executable, or an entry point of the current test
/// binary.
public struct SandboxCommand: Sendable, Hashable {
    enum Target: Sendable, Hashable {
        case executable(String)
        case entryPoint(name: String, testFilter: String)
    }

    let target: Target
    /// Arguments after the executable's name.
    public var arguments: [String]
    /// The child's environment; `nil` inherits this process's environment.
    public var environment: [String: String]?

    /// Runs the executable at `path`.
    ///
    /// - Parameters:
    ///   - path: An absolute path (no `PATH` search), for example from
    ///     ``MemoryPressureSandbox/siblingExecutable(named:)``.
    ///   - arguments: Arguments after the executable's name.
    ///   - environment: The child's environment; `nil` inherits this process's.
    /// - Returns: The command.
    public static func executable(_ path: String, arguments: [String] = [], environment: [String: String]? = nil) -> SandboxCommand {
        SandboxCommand(target: .executable(path), arguments: arguments, environment: environment)
    }

    /// Re-enters the current test binary at the entry point `name`.
    ///
    /// The child runs `/proc/self/exe --testing-library swift-testing --filter <testFilter>`
    /// with `VOLATILE_SANDBOX_ENTRY=<name>` in its environment; the test function that
    /// `testFilter` selects must call
    /// ``MemoryPressureSandbox/runEntryPointIfRequested(_:)``, which runs the entry point's
    /// body and exits the child with its status. See <doc:PressureTesting>.
    ///
    /// - Parameters:
    ///   - name: The ``MemoryPressureSandbox/EntryPoint/name`` to run.
    ///   - testFilter: A Swift Testing `--filter` expression that selects only the dispatching
    ///     test function, for example `"MyPressureTests/sandboxEntryPoints"`.
    ///   - environment: Extra variables for the child, added to this process's environment.
    /// - Returns: The command.
    public static func entryPoint(_ name: String, testFilter: String, environment: [String: String] = [:]) -> SandboxCommand {
        SandboxCommand(
            target: .entryPoint(name: name, testFilter: testFilter),
            arguments: ["--testing-library", "swift-testing", "--filter", testFilter],
            environment: environment)
    }

    /// The executable path and full environment to spawn.
    struct Resolved {
        var path: String
        var arguments: [String]
        var environment: [String]
    }

    func resolved() throws(MemoryPressureSandboxError) -> Resolved {
        switch target {
        case .executable(let path):
            guard Syscall.isAccessible(path, X_OK) else { throw .executableNotFound(path: path) }
            let environment = self.environment.map { $0.map { "\($0.key)=\($0.value)" }.sorted() } ?? Self.inheritedEnvironment()
            return Resolved(path: path, arguments: arguments, environment: environment)
        case .entryPoint(let name, _):
            // Resolved here: inside the launcher shell /proc/self/exe would be the shell.
            let path = try MemoryPressureSandbox.currentExecutablePath()
            var merged = Dictionary(uniqueKeysWithValues: Self.inheritedEnvironment().compactMap { entry -> (String, String)? in
                guard let equals = entry.firstIndex(of: "=") else { return nil }
                return (String(entry[..<equals]), String(entry[entry.index(after: equals)...]))
            })
            for (key, value) in environment ?? [:] { merged[key] = value }
            merged[MemoryPressureSandbox.entryPointEnvironmentVariable] = name
            return Resolved(path: path, arguments: arguments, environment: merged.map { "\($0.key)=\($0.value)" }.sorted())
        }
    }

    private static func inheritedEnvironment() -> [String] {
        var result: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            result.append(String(cString: entry))
            cursor += 1
        }
        return result
    }
}
