import Foundation
import Glibc
import Synchronization
import VolatileCacheTesting

/// `--swap`: the swap the sandboxed children run with.
enum SwapMode: String, CaseIterable, Sendable {
    /// Swap forbidden in the children's cgroup (the default; the machine's swap is not touched).
    case none
    /// A zram device (`/sys/block/zram0`, lz4) set up as swap by the demo, removed afterwards.
    case zram
    /// A swap file in /var/tmp set up by the demo, removed afterwards.
    case file
    /// Whatever swap the machine has; the cgroup's swap is left unlimited.
    case machine

    /// Whether the children's cgroups leave swap unlimited.
    var allowsSwap: Bool { self != .none }
}

/// The machine state the demo changes while it runs (swap it set up, the children's cgroups),
/// and how it is undone: on a normal end, on SIGINT/SIGTERM/SIGHUP, and, since a SIGKILL cannot
/// be caught, on the next start from a marker file that names what a run left behind.
///
/// The marker (`/run/image-decoder-demo/<pid>` as root) has one line per resource:
/// `cgroups <prefix>` (the sandbox folders this pid creates), `zram <device>`, `file <path>`.
final class SwapSetup: @unchecked Sendable {
    /// Size of the swap the demo sets up, as in the issue's measurements.
    static let swapMiB = 4096
    static let zramDevice = "/dev/zram0"
    static let zramFolder = "/sys/block/zram0"

    let mode: SwapMode
    /// What `--swap` amounts to here, for the table and chart ("4 GiB zram (lz4)").
    private(set) var description: String
    private let markerPath: String
    /// Guarded by `lock`: what is set up, so the signal thread and the main path undo it once.
    private var resources: [String] = []
    private let lock = NSLock()
    private var tornDown = false

    /// Removes what earlier, killed runs left, then sets up `mode`'s swap and the signal handlers.
    /// - Parameters:
    ///   - mode: The swap to run with.
    ///   - sandboxParent: The folder the sandbox makes its cgroups in, if there is a sandbox.
    /// - Throws: ``DemoError`` when the swap cannot be set up (after undoing what was done).
    init(mode: SwapMode, sandboxParent: String?) throws {
        self.mode = mode
        let folder = getuid() == 0 ? "/run/image-decoder-demo" : "/tmp/image-decoder-demo-\(getuid())"
        mkdir(folder, 0o700)
        markerPath = folder + "/\(getpid())"
        description = mode.rawValue
        Self.cleanStaleState(in: folder)
        if let sandboxParent { record("cgroups \(sandboxParent)/volatile-sandbox-\(getpid())-") }
        Self.installSignalHandlers(self)
        do {
            switch mode {
            case .none: description = "none (swap forbidden in the cgroup)"
            case .machine: description = Self.activeSwapSummary().map { "the machine's (\($0))" } ?? "the machine's (none active)"
            case .zram: try setUpZram()
            case .file: try setUpFile()
            }
        } catch {
            tearDown()
            throw error
        }
    }

    // MARK: Setting up

    private func setUpZram() throws {
        guard getuid() == 0 else { throw DemoError("--swap zram needs root (it sets up \(Self.zramDevice))") }
        guard access(Self.zramFolder, F_OK) == 0 else {
            throw DemoError("--swap zram: \(Self.zramFolder) does not exist (modprobe zram first)")
        }
        if Self.activeSwapDevices().contains(Self.zramDevice) {
            throw DemoError("--swap zram: \(Self.zramDevice) is already in use as swap")
        }
        record("zram \(Self.zramDevice)")
        try Self.writeFile(Self.zramFolder + "/reset", "1")
        let algorithm = (try? Self.writeFile(Self.zramFolder + "/comp_algorithm", "lz4")) != nil ? "lz4" : "the default algorithm"
        try Self.writeFile(Self.zramFolder + "/disksize", "\(Self.swapMiB << 20)")
        try Self.runTool("mkswap", [Self.zramDevice])
        try Self.runTool("swapon", [Self.zramDevice])
        description = "\(Self.swapMiB / 1024) GiB zram (\(algorithm))"
    }

    private func setUpFile() throws {
        guard getuid() == 0 else { throw DemoError("--swap file needs root (swapon)") }
        let path = "/var/tmp/image-decoder-demo-\(getpid()).swap"
        var space = statvfs()
        if statvfs("/var/tmp", &space) == 0, Int(space.f_bavail) * Int(space.f_frsize) < (Self.swapMiB + 1024) << 20 {
            throw DemoError("--swap file: /var/tmp has less than \(Self.swapMiB + 1024) MiB free")
        }
        record("file \(path)")
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DemoError("--swap file: cannot create \(path): \(String(cString: strerror(errno)))") }
        let status = posix_fallocate(fd, 0, off_t(Self.swapMiB << 20))
        close(fd)
        guard status == 0 else { throw DemoError("--swap file: cannot allocate \(Self.swapMiB) MiB in \(path): \(String(cString: strerror(status)))") }
        try Self.runTool("mkswap", [path])
        try Self.runTool("swapon", [path])
        description = "\(Self.swapMiB / 1024) GiB swap file"
    }

    // MARK: Undoing

    /// Whether a signal asked the run to stop: start no further child.
    static var isTerminating: Bool { terminating.load(ordering: .acquiring) }
    private static let terminating = Atomic<Bool>(false)

    /// Undoes everything this run set up (once; later calls do nothing).
    func tearDown() {
        lock.lock()
        defer { lock.unlock() }
        undoOnce()
    }

    /// The signal path: undoes, then exits while still holding the lock, so the main path
    /// (which may be finishing meanwhile) cannot exit first with another status.
    func tearDownAndExit(_ status: Int32) -> Never {
        lock.lock()
        undoOnce()
        _exit(status)
    }

    private func undoOnce() {
        guard !tornDown else { return }
        tornDown = true
        Self.undo(resources)
        if Self.isTerminating {
            // A child the main path was starting as the signal came may have made its cgroup
            // after the first pass.
            usleep(300_000)
            Self.undo(resources.filter { $0.hasPrefix("cgroups ") })
        }
        unlink(markerPath)
    }

    private func record(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        resources.append(line)
        let text = resources.joined(separator: "\n") + "\n"
        let fd = open(markerPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd >= 0 {
            Output.write(text, to: fd)
            fsync(fd)
            close(fd)
        }
    }

    /// Undoes marker lines, children's cgroups first (their processes hold swap), then swap.
    private static func undo(_ lines: [String]) {
        for line in lines where line.hasPrefix("cgroups ") { removeControlGroups(prefix: String(line.dropFirst(8))) }
        for line in lines.reversed() {
            if line.hasPrefix("zram ") {
                let device = String(line.dropFirst(5))
                if activeSwapDevices().contains(device) { try? runTool("swapoff", [device]) }
                try? writeFile(zramFolder + "/reset", "1")
            } else if line.hasPrefix("file ") {
                let path = String(line.dropFirst(5))
                if activeSwapDevices().contains(path) { try? runTool("swapoff", [path]) }
                unlink(path)
            }
        }
    }

    /// Kills the processes in, and removes, every cgroup folder whose path starts with `prefix`.
    private static func removeControlGroups(prefix: String) {
        guard let slash = prefix.lastIndex(of: "/") else { return }
        let parent = String(prefix[..<slash]), namePrefix = String(prefix[prefix.index(after: slash)...])
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix(namePrefix) {
            let folder = parent + "/" + name
            for _ in 0..<200 {
                let pids = (ProcessMemory.readSmallFile(folder + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { pid_t($0) }
                for pid in pids { kill(pid, SIGKILL) }
                if rmdir(folder) == 0 || errno == ENOENT { break }
                usleep(10_000)
            }
        }
    }

    /// Undoes what runs that are no longer alive left in `folder`.
    private static func cleanStaleState(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names {
            guard let pid = pid_t(name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let lines = (ProcessMemory.readSmallFile(folder + "/" + name) ?? "").split(separator: "\n").map(String.init)
            Output.error("note: undoing what an earlier run (pid \(pid)) left behind: \(lines.joined(separator: "; "))")
            undo(lines)
            unlink(folder + "/" + name)
        }
    }

    // MARK: Signals

    /// The setup the signal thread undoes (one per process).
    nonisolated(unsafe) private static var current: SwapSetup?
    nonisolated(unsafe) private static var signalPipe: (read: Int32, write: Int32) = (-1, -1)

    /// SIGINT/SIGTERM/SIGHUP write their number to a pipe (all a handler may safely do); a
    /// thread reads it, undoes the setup and exits with 128 + the signal.
    private static func installSignalHandlers(_ setup: SwapSetup) {
        current = setup
        guard signalPipe.read < 0 else { return }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        signalPipe = (fds[0], fds[1])
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SwapSetup.signalPipe.write, &byte, 1)
            }
        }
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(SwapSetup.signalPipe.read, &byte, 1) < 0 && errno == EINTR {}
            terminating.store(true, ordering: .releasing)
            Output.error("\nimage-decoder-demo: signal \(byte): removing the cgroups and swap this run set up")
            SwapSetup.current?.tearDownAndExit(128 + Int32(byte))
            _exit(128 + Int32(byte))
        }
    }

    // MARK: Helpers

    /// Devices and files in use as swap (/proc/swaps).
    static func activeSwapDevices() -> [String] {
        (ProcessMemory.readSmallFile("/proc/swaps") ?? "").split(separator: "\n").dropFirst().compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init)
        }
    }

    /// "4096 MiB in 1 device" for the machine's active swap, or nil for none.
    static func activeSwapSummary() -> String? {
        let lines = (ProcessMemory.readSmallFile("/proc/swaps") ?? "").split(separator: "\n").dropFirst()
        guard !lines.isEmpty else { return nil }
        let kib = lines.compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.flatMap { Int($0) } }.reduce(0, +)
        return "\(kib / 1024) MiB in \(lines.count) device\(lines.count == 1 ? "" : "s")"
    }

    private static func writeFile(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DemoError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = text.withCString { write(fd, $0, strlen($0)) }
        guard written >= 0 else { throw DemoError("cannot write \"\(text)\" to \(path): \(String(cString: strerror(errno)))") }
    }

    /// Runs mkswap/swapon/swapoff (found in the sbin folders) and waits for it.
    private static func runTool(_ name: String, _ arguments: [String]) throws {
        guard let path = ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map({ $0 + name }).first(where: { access($0, X_OK) == 0 }) else {
            throw DemoError("\(name) not found")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard status == 0 else { throw DemoError("cannot run \(path): \(String(cString: strerror(status)))") }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        guard waitStatus == 0 else { throw DemoError("\(name) \(arguments.joined(separator: " ")) failed (wait status \(waitStatus))") }
    }
}
