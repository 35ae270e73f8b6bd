// The sandbox's cgroup folder: creation under the parent, limits, counters, removal.
// Every file name that differs between cgroup v1 and v2 lives here.

import Glibc
import Synchronization
import VolatileCache
import VolatileSystem

extension MemoryPressureSandbox {
    /// Which cgroup interface the sandbox drives.
    public enum Hierarchy: String, Sendable, Hashable {
        /// The v1 memory controller (`memory.limit_in_bytes`, `memory.oom_control`).
        case v1
        /// The v2 unified hierarchy (`memory.max`, `memory.events`).
        case v2
    }
}

/// One child cgroup folder. Created by `create`, removed by `remove()` (the sandbox calls it on
/// every path once the child is reaped).
struct SandboxControlGroup: Sendable {
    let path: String
    let hierarchy: MemoryPressureSandbox.Hierarchy
    /// Leave swap unlimited instead of forbidding it (``MemoryPressureSandbox/allowsSwap``).
    var allowsSwap = false

    private static let counter = Atomic<Int>(0)

    /// Creates a uniquely named child folder of `parent`.
    static func create(
        in parent: String,
        hierarchy: MemoryPressureSandbox.Hierarchy
    ) throws(MemoryPressureSandboxError) -> SandboxControlGroup {
        let serial = counter.add(1, ordering: .relaxed).newValue
        let name = "volatile-sandbox-\(getpid())-\(serial)-\(UInt32.random(in: 0 ... .max))"
        let path = parent + "/" + name
        if case .failure(let error) = Syscall.makeDirectory(path) {
            throw .unavailable(reason: "cannot create a cgroup folder \(path): \(error)")
        }
        return SandboxControlGroup(path: path, hierarchy: hierarchy)
    }

    // MARK: Limits and counters

    /// Sets the memory limit; on v1 also `memory.memsw.limit_in_bytes` (memory+swap) when the
    /// kernel has it, so swap cannot take the place of the limit.
    func setLimit(_ bytes: Int) throws(MemoryPressureSandboxError) {
        if allowsSwap { return try setLimitAllowingSwap(bytes) }
        switch hierarchy {
        case .v2:
            try write("memory.max", "\(bytes)", limit: bytes)
            // A child on a machine with swap would otherwise swap instead of being squeezed.
            if exists("memory.swap.max") { try? write("memory.swap.max", "0", limit: bytes) }
        case .v1:
            // memsw must stay >= the plain limit at every moment: raise memsw first, lower it last.
            let hasSwapLimit = exists("memory.memsw.limit_in_bytes")
            let current = (try? readInteger("memory.limit_in_bytes")) ?? Int.max
            if hasSwapLimit && bytes > current {
                try write("memory.memsw.limit_in_bytes", "\(bytes)", limit: bytes)
            }
            try write("memory.limit_in_bytes", "\(bytes)", limit: bytes)
            if hasSwapLimit && bytes <= current {
                try write("memory.memsw.limit_in_bytes", "\(bytes)", limit: bytes)
            }
        }
    }

    /// Sets the memory limit and leaves swap unlimited (v1: memory+swap -1, written first so it
    /// is never below the plain limit; v2: `memory.swap.max` "max").
    private func setLimitAllowingSwap(_ bytes: Int) throws(MemoryPressureSandboxError) {
        switch hierarchy {
        case .v2:
            try write("memory.max", "\(bytes)", limit: bytes)
            if exists("memory.swap.max") { try write("memory.swap.max", "max", limit: bytes) }
        case .v1:
            if exists("memory.memsw.limit_in_bytes") { try write("memory.memsw.limit_in_bytes", "-1", limit: bytes) }
            try write("memory.limit_in_bytes", "\(bytes)", limit: bytes)
        }
    }

    /// The memory limit in force, in bytes (`Int.max` for "max").
    func limit() throws(MemoryPressureSandboxError) -> Int {
        try readInteger(hierarchy == .v1 ? "memory.limit_in_bytes" : "memory.max")
    }

    /// Current usage in bytes.
    func usage() throws(MemoryPressureSandboxError) -> Int {
        try readInteger(hierarchy == .v1 ? "memory.usage_in_bytes" : "memory.current")
    }

    /// Peak usage in bytes, where the kernel records it (v2 `memory.peak` needs Linux 5.19).
    func peakUsage() -> Int? {
        try? readInteger(hierarchy == .v1 ? "memory.max_usage_in_bytes" : "memory.peak")
    }

    /// How many times the limit was hit (v1 `memory.failcnt`, v2 `max` in `memory.events`).
    func limitHitCount() -> Int? {
        switch hierarchy {
        case .v1: try? readInteger("memory.failcnt")
        case .v2: try? readKey("max", in: "memory.events")
        }
    }

    /// How many processes the OOM killer killed in this cgroup.
    func oomKillCount() -> Int? {
        switch hierarchy {
        case .v1: try? readKey("oom_kill", in: "memory.oom_control")
        case .v2: try? readKey("oom_kill", in: "memory.events")
        }
    }

    // MARK: Processes and removal

    /// The pids in the folder.
    func processes() -> [Int32] {
        guard case .success(let text) = Syscall.readText(path + "/cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// SIGKILLs every process in the folder (v2 `cgroup.kill` where present).
    func killAll() {
        if hierarchy == .v2 && exists("cgroup.kill") {
            _ = Syscall.writeText(path + "/cgroup.kill", "1")
        }
        for pid in processes() { _ = Syscall.kill(pid, SIGKILL) }
    }

    /// Kills whatever is left, then removes the folder, retrying on EBUSY for up to about 2 s
    /// (the kernel releases a cgroup shortly after its last task is reaped).
    ///
    /// - Returns: `nil` when the folder is gone, or why it could not be removed.
    func remove() -> String? {
        var lastError = Errno.resourceBusy
        for attempt in 0..<200 {
            if attempt > 0 { usleep(10_000) }
            guard case .failure(let error) = Syscall.removeDirectory(path) else { return nil }
            lastError = error
            if error == .noSuchFileOrDirectory { return nil }
            guard error == .resourceBusy else { break }
            // Leftover grandchildren (a shell's background job) keep it busy: kill them.
            killAll()
        }
        return "rmdir \(path): \(lastError)"
    }

    // MARK: File helpers

    func exists(_ file: String) -> Bool {
        Syscall.isAccessible(path + "/" + file)
    }

    private func write(_ file: String, _ value: String, limit: Int) throws(MemoryPressureSandboxError) {
        if case .failure(let error) = Syscall.writeText(path + "/" + file, value) {
            if error == .resourceBusy || error == .invalidArgument { throw .limitRejected(bytes: limit, errno: error) }
            throw .cgroupOperationFailed(path: path + "/" + file, errno: error, operation: "writing \(value) to")
        }
    }

    private func readText(_ file: String) throws(MemoryPressureSandboxError) -> String {
        switch Syscall.readText(path + "/" + file) {
        case .success(let text): return text
        case .failure(let error):
            throw .cgroupOperationFailed(path: path + "/" + file, errno: error, operation: "reading")
        }
    }

    private func readInteger(_ file: String) throws(MemoryPressureSandboxError) -> Int {
        let text = try readText(file).split(whereSeparator: { $0 == "\n" || $0 == " " }).first ?? ""
        if text == "max" { return .max }
        guard let value = Int(text) else {
            throw .cgroupOperationFailed(path: path + "/" + file, errno: .invalidArgument, operation: "parsing \"\(text)\" from")
        }
        return value
    }

    /// Reads `key value` lines (memory.events, memory.oom_control).
    private func readKey(_ key: String, in file: String) throws(MemoryPressureSandboxError) -> Int {
        for line in try readText(file).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2 && fields[0] == key, let value = Int(fields[1]) { return value }
        }
        throw .cgroupOperationFailed(path: path + "/" + file, errno: .noSuchFileOrDirectory, operation: "finding \(key) in")
    }
}
