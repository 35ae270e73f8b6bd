import Foundation
import Glibc
import Synchronization

/// `--neighbour-mib N --neighbour-at S --neighbour-seconds D`: a co-tenant in the workload's
/// cgroup. S seconds into the workload, the workload process starts a copy of this executable
/// (so it joins the same cgroup) that touches N MiB, holds them for D seconds, frees them and
/// exits. It is the neighbour a fixed `totalCostLimit` cannot make room for.
final class NeighbourBurst: Sendable {
    /// What the command line asked for.
    struct Settings: Sendable, Equatable {
        var mebibytes = 0
        var startSeconds = 5.0
        var holdSeconds = 5.0

        var isEnabled: Bool { mebibytes > 0 }
        /// The options that pass these settings on to a child.
        var arguments: [String] {
            ["--neighbour-mib", String(mebibytes), "--neighbour-at", String(startSeconds), "--neighbour-seconds", String(holdSeconds)]
        }
        /// "128 MiB at 5 s for 5 s".
        var summary: String { "\(mebibytes) MiB at \(fixed(startSeconds, 0)) s for \(fixed(holdSeconds, 0)) s" }
    }

    /// How the neighbour ended, as the NEIGHBOUR line and the RESULT field name it.
    enum Ending: Sendable, Equatable, CustomStringConvertible {
        case notStarted
        case running
        case finished
        case failed(exitStatus: Int32)
        case killed(signal: Int32)
        case spawnFailed(errno: Int32)

        var description: String {
            switch self {
            case .notStarted: "not-started"
            case .running: "running"
            case .finished: "finished"
            case .failed(let status): "exit-\(status)"
            case .killed(let signal): signal == SIGKILL ? "killed" : "signal-\(signal)"
            case .spawnFailed(let code): "spawn-failed-\(code)"
            }
        }
    }

    let settings: Settings
    private let state = Mutex<(ending: Ending, pid: pid_t)>((.notStarted, 0))

    private init(settings: Settings) {
        self.settings = settings
    }

    /// Starts the timer: the neighbour process starts `settings.startSeconds` from now.
    /// - Returns: The burst, or nil when none was asked for.
    static func start(_ settings: Settings) -> NeighbourBurst? {
        guard settings.isEnabled else { return nil }
        let burst = NeighbourBurst(settings: settings)
        Thread.detachNewThread { burst.runNeighbour() }
        return burst
    }

    private func runNeighbour() {
        usleep(useconds_t(settings.startSeconds * 1_000_000))
        guard let executable = try? currentExecutable() else {
            state.withLock { $0.ending = .spawnFailed(errno: errno) }
            return
        }
        let arguments = [executable, "--neighbour-process"] + settings.arguments
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard status == 0 else {
            state.withLock { $0.ending = .spawnFailed(errno: status) }
            return
        }
        state.withLock { $0 = (.running, pid) }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        let signal = waitStatus & 0x7F
        let ending: Ending = signal != 0 ? .killed(signal: signal) : ((waitStatus >> 8) & 0xFF == 0 ? .finished : .failed(exitStatus: (waitStatus >> 8) & 0xFF))
        state.withLock { $0.ending = ending }
    }

    /// Waits (up to the burst's own schedule plus `slack` seconds) for the neighbour to end;
    /// one still running then is killed.
    /// - Returns: The NEIGHBOUR line for the parent.
    func finish(slack: Double = 10) -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int((settings.startSeconds + settings.holdSeconds + slack) * 1000))
        while ContinuousClock.now < deadline {
            let ending = state.withLock { $0.ending }
            if ending != .running && ending != .notStarted { break }
            usleep(50_000)
        }
        let (ending, pid) = state.withLock { $0 }
        if ending == .running { kill(pid, SIGKILL) }
        return "NEIGHBOUR mib=\(settings.mebibytes) at=\(settings.startSeconds) seconds=\(settings.holdSeconds) ended=\(ending)"
    }

    private func currentExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw DemoError("readlink /proc/self/exe: \(String(cString: strerror(errno)))") }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The neighbour process itself: touches `mebibytes` MiB page by page, holds them for
    /// `holdSeconds`, frees them.
    /// - Returns: The exit status.
    static func runNeighbourProcess(_ settings: Settings) -> Int32 {
        let bytes = settings.mebibytes << 20
        guard let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), memory != MAP_FAILED else {
            Output.error("neighbour: cannot map \(settings.mebibytes) MiB: \(String(cString: strerror(errno)))")
            return 1
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let base = memory.assumingMemoryBound(to: UInt8.self)
        // Distinct non-zero bytes, so neither zram nor KSM can fold the pages away.
        var offset = 0
        var value: UInt64 = 0x9E37_79B9_7F4A_7C15
        while offset < bytes {
            for word in stride(from: 0, to: min(page, bytes - offset), by: 512) {
                value = value &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                (memory + offset + word).storeBytes(of: value | 1, as: UInt64.self)
            }
            base[offset + page - 1] = 0xA5
            offset += page
        }
        usleep(useconds_t(settings.holdSeconds * 1_000_000))
        munmap(memory, bytes)
        return 0
    }
}
