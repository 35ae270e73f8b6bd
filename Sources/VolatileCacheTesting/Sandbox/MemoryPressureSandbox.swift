import Glibc
import VolatileCache
import VolatileSystem

/// Runs a child process inside a fresh memory cgroup with a memory limit, so a test can put it
/// under real memory pressure without endangering the machine or the test runner.
///
/// Each ``start(_:memoryLimit:timeout:teeOutput:)`` creates a new child folder of the caller's own
/// memory cgroup (cgroup v1 memory controller or cgroup v2), places the child in it before the
/// child runs any of its own code, and removes the folder after the child has been reaped, also
/// when something fails. The caller can change the limit while the child runs and gets a
/// ``SandboxResult`` with the exit status, OOM kills, peak usage, wall time and captured output.
///
/// ```swift
/// let sandbox = try MemoryPressureSandbox()
/// let result = try await sandbox.run(
///     .executable("/usr/bin/python3", arguments: ["-c", "bytearray(64 << 20)"]),
///     memoryLimit: 32 << 20)
/// #expect(result.wasOOMKilled)
/// ```
///
/// Creating cgroups needs root, or a delegated cgroup v2 subtree; see ``availability``. Set
/// `VOLATILE_SANDBOX_CGROUP_PARENT` to use another parent folder (for example a delegated one).
public struct MemoryPressureSandbox: Sendable {
    /// The cgroup folder under which each child gets its own folder.
    public let parentPath: String
    /// The cgroup interface in use.
    public let hierarchy: Hierarchy
    /// Whether children may swap: `false` (the default) forbids swap in their cgroups
    /// (`memory.swap.max` 0, or v1 `memory.memsw.limit_in_bytes` equal to the limit), so the
    /// limit squeezes; `true` leaves their swap unlimited, as a machine with swap would.
    public var allowsSwap = false

    /// Environment variable naming a parent cgroup folder to use instead of the caller's own.
    public static let parentEnvironmentVariable = "VOLATILE_SANDBOX_CGROUP_PARENT"

    /// Finds the caller's memory cgroup (or the folder in `VOLATILE_SANDBOX_CGROUP_PARENT`):
    /// the cgroup v1 memory hierarchy where it is mounted, otherwise cgroup v2.
    ///
    /// - Throws: ``MemoryPressureSandboxError/unavailable(reason:)`` when no usable memory cgroup
    ///   is found; the reason says why.
    public init() throws(MemoryPressureSandboxError) {
        if let override = getenv(Self.parentEnvironmentVariable).map({ String(cString: $0) }), !override.isEmpty {
            try self.init(parentPath: override)
            return
        }
        let location = ControlGroupLocation.current()
        if let v1 = location.v1Memory {
            try self.init(parentPath: v1, hierarchy: .v1)
        } else if let v2 = location.v2 {
            try self.init(parentPath: v2, hierarchy: .v2)
        } else {
            throw .unavailable(reason: "no cgroup v1 memory hierarchy or cgroup v2 hierarchy is mounted for this process (/proc/self/cgroup, /proc/self/mountinfo)")
        }
    }

    /// Uses `parentPath` as the parent of the children's cgroups; the hierarchy is detected from
    /// the files in it.
    ///
    /// - Parameter parentPath: An existing cgroup folder, for example a delegated v2 subtree.
    /// - Throws: ``MemoryPressureSandboxError/unavailable(reason:)`` when the folder is not a
    ///   memory cgroup the sandbox can use.
    public init(parentPath: String) throws(MemoryPressureSandboxError) {
        let hierarchy: Hierarchy
        if Syscall.isAccessible(parentPath + "/memory.limit_in_bytes") {
            hierarchy = .v1
        } else if Syscall.isAccessible(parentPath + "/cgroup.controllers") {
            hierarchy = .v2
        } else {
            throw .unavailable(reason: "\(parentPath) is not a memory cgroup folder (no memory.limit_in_bytes or cgroup.controllers)")
        }
        try self.init(parentPath: parentPath, hierarchy: hierarchy)
    }

    /// Uses `parentPath` with a given hierarchy (tests point it at unusable folders).
    init(parentPath: String, hierarchy: Hierarchy) throws(MemoryPressureSandboxError) {
        let isDirectory: Bool
        switch Syscall.isDirectory(parentPath) {
        case .success(let value): isDirectory = value
        case .failure(let error): throw .unavailable(reason: "cgroup folder \(parentPath): \(error)")
        }
        guard isDirectory else {
            throw .unavailable(reason: "\(parentPath) is not a folder")
        }
        if hierarchy == .v2 {
            try Self.enableV2MemoryController(in: parentPath)
        }
        self.parentPath = parentPath
        self.hierarchy = hierarchy
    }

    /// The v2 parent must list `memory` in `cgroup.subtree_control` for its children to get limits.
    private static func enableV2MemoryController(in parent: String) throws(MemoryPressureSandboxError) {
        let controllers = (try? Syscall.readText(parent + "/cgroup.controllers").get()) ?? ""
        guard controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("memory") else {
            throw .unavailable(reason: "the memory controller is not available in \(parent) (cgroup.controllers: \"\(controllers.filter { $0 != "\n" })\"); it must be enabled in the parent's cgroup.subtree_control (delegation)")
        }
        let subtree = (try? Syscall.readText(parent + "/cgroup.subtree_control").get()) ?? ""
        if subtree.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("memory") { return }
        if case .failure(let error) = Syscall.writeText(parent + "/cgroup.subtree_control", "+memory") {
            let hint = error == .resourceBusy
                ? " (the cgroup has processes of its own: cgroup v2 only gives controllers to children of a cgroup without processes; run the tests from a leaf of a delegated subtree and point \(parentEnvironmentVariable) at an empty sibling)"
                : ""
            throw .unavailable(reason: "cannot enable the memory controller in \(parent)/cgroup.subtree_control: \(error)\(hint)")
        }
    }

    // MARK: Running children

    /// Starts `command` in a new cgroup limited to `memoryLimit` bytes.
    ///
    /// The child is a member of the cgroup before it runs any of its own code. Its standard
    /// input is `/dev/null`; standard output and error are captured.
    ///
    /// - Parameters:
    ///   - command: What to run: an executable, or an entry point of the current test binary.
    ///   - memoryLimit: The limit in bytes (`memory.limit_in_bytes` / `memory.max`).
    ///   - timeout: After this long the child is killed with SIGKILL and the result says
    ///     ``SandboxResult/timedOut``; `nil` waits forever.
    ///   - teeOutput: Also copy the child's output to this process's standard error as it arrives.
    /// - Returns: The running child; await ``SandboxedProcess/result()`` for its outcome.
    /// - Throws: ``MemoryPressureSandboxError`` when the cgroup cannot be created or configured
    ///   or the child cannot be spawned; the cgroup is removed before the error is thrown.
    public func start(
        _ command: SandboxCommand,
        memoryLimit: Int,
        timeout: Duration? = .seconds(60),
        teeOutput: Bool = false
    ) throws(MemoryPressureSandboxError) -> SandboxedProcess {
        let resolved = try command.resolved()
        var group = try SandboxControlGroup.create(in: parentPath, hierarchy: hierarchy)
        group.allowsSwap = allowsSwap
        do {
            try group.setLimit(memoryLimit)
            return try SandboxedProcess.spawn(resolved, in: group, timeout: timeout, teeOutput: teeOutput)
        } catch {
            _ = group.remove()
            throw error
        }
    }

    /// Runs `command` in a new cgroup limited to `memoryLimit` bytes and waits for it.
    ///
    /// - Parameters:
    ///   - command: What to run.
    ///   - memoryLimit: The limit in bytes.
    ///   - timeout: After this long the child is killed with SIGKILL; `nil` waits forever.
    ///   - teeOutput: Also copy the child's output to this process's standard error.
    /// - Returns: How the child ended, its peak usage, OOM kills and captured output.
    /// - Throws: ``MemoryPressureSandboxError`` as ``start(_:memoryLimit:timeout:teeOutput:)`` does,
    ///   or ``MemoryPressureSandboxError/placementFailed(message:)``.
    public func run(
        _ command: SandboxCommand,
        memoryLimit: Int,
        timeout: Duration? = .seconds(60),
        teeOutput: Bool = false
    ) async throws(MemoryPressureSandboxError) -> SandboxResult {
        try await start(command, memoryLimit: memoryLimit, timeout: timeout, teeOutput: teeOutput).result()
    }

    // MARK: Availability

    /// Whether the sandbox can create memory cgroups here, and if not, why.
    public enum Availability: Sendable, Hashable, CustomStringConvertible {
        /// Cgroups can be created; `hierarchy` and `parentPath` say where.
        case available(hierarchy: Hierarchy, parentPath: String)
        /// They cannot; `reason` says why (for a skip message).
        case unavailable(reason: String)

        /// `true` for ``available(hierarchy:parentPath:)``.
        public var isAvailable: Bool {
            if case .available = self { return true }
            return false
        }

        /// The reason, or where cgroups will be created.
        public var description: String {
            switch self {
            case .available(let hierarchy, let parentPath): "available (cgroup \(hierarchy) under \(parentPath))"
            case .unavailable(let reason): "unavailable: \(reason)"
            }
        }
    }

    /// Whether memory cgroups can be created here, found by creating and removing one.
    ///
    /// Computed once per process and cached.
    public static var availability: Availability { cachedAvailability }

    private static let cachedAvailability: Availability = probeAvailability()

    /// Probes by creating a cgroup, setting a limit on it, and removing it again.
    static func probeAvailability(_ makeSandbox: () throws(MemoryPressureSandboxError) -> MemoryPressureSandbox = { () throws(MemoryPressureSandboxError) in try MemoryPressureSandbox() }) -> Availability {
        do {
            let sandbox = try makeSandbox()
            let group = try SandboxControlGroup.create(in: sandbox.parentPath, hierarchy: sandbox.hierarchy)
            defer { _ = group.remove() }
            do {
                try group.setLimit(64 << 20)
            } catch {
                return .unavailable(reason: "cannot set a memory limit in \(group.path): \(error)")
            }
            return .available(hierarchy: sandbox.hierarchy, parentPath: sandbox.parentPath)
        } catch {
            switch error {
            case .unavailable(let reason): return .unavailable(reason: reason)
            default: return .unavailable(reason: error.description)
            }
        }
    }

    // MARK: Finding executables

    /// Finds an executable built into the same build folder as the running binary, such as a
    /// package's `volatile-stress` next to `.build/debug/VolatilePackageTests.xctest`.
    ///
    /// Looks in the folder of `/proc/self/exe` and, for a binary inside a bundle folder
    /// (`X.xctest/Contents/MacOS/X`), in the folder containing the bundle. Build the executable
    /// first (`swift build`, or a test target that depends on the executable target).
    ///
    /// - Parameter name: The executable's file name.
    /// - Returns: Its absolute path, or `nil` when no executable file of that name is there.
    public static func siblingExecutable(named name: String) -> String? {
        guard let current = try? currentExecutablePath() else { return nil }
        var folders = [parentFolder(of: current)]
        if let bundle = current.firstRange(of: ".xctest/") {
            folders.append(parentFolder(of: String(current[..<bundle.lowerBound])))
        }
        for folder in folders {
            let candidate = folder + "/" + name
            if case .success(false) = Syscall.isDirectory(candidate), Syscall.isAccessible(candidate, X_OK) {
                return candidate
            }
        }
        return nil
    }

    /// The absolute path of the running executable (resolved from `/proc/self/exe`).
    ///
    /// - Returns: The path.
    /// - Throws: ``MemoryPressureSandboxError/currentExecutableUnavailable(errno:)``.
    public static func currentExecutablePath() throws(MemoryPressureSandboxError) -> String {
        switch Syscall.readLink("/proc/self/exe") {
        case .success(let path): return path
        case .failure(let error): throw .currentExecutableUnavailable(errno: error)
        }
    }

    private static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
