import CVolatileShim
import Glibc
import VolatileCache
import VolatileMemory
import VolatileSystem

/// A child running in a ``MemoryPressureSandbox`` cgroup.
///
/// A supervisor thread captures the child's output, enforces the timeout, reaps the child and
/// removes its cgroup; ``result()`` returns once all of that is done.
public final class SandboxedProcess: Sendable {
    /// The child's process id (it stays a zombie until the sandbox reaps it, so the id is not
    /// reused while the child is running).
    public var pid: Int32 { child.pid }
    /// The child's cgroup folder (removed after the child is reaped).
    public var cgroupPath: String { group.path }

    let group: SandboxControlGroup
    fileprivate let child: SandboxChild
    fileprivate let completion: SandboxCompletion

    private init(child: SandboxChild, group: SandboxControlGroup, completion: SandboxCompletion) {
        self.child = child
        self.group = group
        self.completion = completion
    }

    /// Changes the memory limit while the child runs.
    ///
    /// On cgroup v2 a limit below the usage makes the kernel reclaim and then OOM-kill. On cgroup
    /// v1 the write fails with EBUSY when reclaim cannot bring the usage below the new limit.
    ///
    /// - Parameter bytes: The new limit in bytes.
    /// - Throws: ``MemoryPressureSandboxError/limitRejected(bytes:errno:)`` when the kernel
    ///   refuses it, or ``MemoryPressureSandboxError/cgroupOperationFailed(path:errno:operation:)``
    ///   once the child is gone.
    public func setMemoryLimit(_ bytes: Int) throws(MemoryPressureSandboxError) {
        try group.setLimit(bytes)
    }

    /// The memory limit in force, in bytes.
    ///
    /// - Returns: The limit (`Int.max` when unlimited).
    /// - Throws: ``MemoryPressureSandboxError/cgroupOperationFailed(path:errno:operation:)``.
    public func memoryLimit() throws(MemoryPressureSandboxError) -> Int {
        try group.limit()
    }

    /// The cgroup's current memory usage in bytes (lazily freed pages count until reclaimed).
    ///
    /// - Returns: The usage.
    /// - Throws: ``MemoryPressureSandboxError/cgroupOperationFailed(path:errno:operation:)``
    ///   once the child is gone.
    public func memoryUsage() throws(MemoryPressureSandboxError) -> Int {
        try group.usage()
    }

    /// Sends SIGKILL to the child and to every process in its cgroup.
    ///
    /// Also right after ``MemoryPressureSandbox/start(_:memoryLimit:timeout:teeOutput:)``: a child
    /// that has not joined its cgroup yet is killed by its pid before it runs any of its own code.
    public func kill() {
        child.kill()
        group.killAll()
    }

    /// Waits for the child to end and its cgroup to be removed. Cancelling the waiting task kills
    /// the child.
    ///
    /// - Returns: The outcome; the same value on every call.
    /// - Throws: ``MemoryPressureSandboxError/placementFailed(message:)`` when the child could not
    ///   join its cgroup.
    public func result() async throws(MemoryPressureSandboxError) -> SandboxResult {
        let outcome = await withTaskCancellationHandler {
            await completion.wait()
        } onCancel: {
            kill()
        }
        return try outcome.get()
    }

    // MARK: Spawning

    // Placement. The child must be in the cgroup before any of its own code runs, or its first
    // allocations escape the limit (and a fast workload could finish before being moved). Options:
    // - clone3(CLONE_INTO_CGROUP) does exactly this, but only for cgroup v2 and not from Swift;
    // - fork + write cgroup.procs in the child is not safe in a multi-threaded Swift process
    //   (only async-signal-safe calls may follow fork);
    // - moving the spawning thread into the cgroup first charges the wrong task on v1.
    // So a tiny /bin/sh launcher writes its own pid ($$) to cgroup.procs and then execs the real
    // program: exec keeps the pid and the cgroup, nothing of the target runs before the move,
    // and a failed write stops the launcher with a marker the supervisor recognises.
    static let launcherScript =
        #"echo $$ > "$1" || { echo "\#(placementMarker) $1" >&2; exit 125; }; shift; exec "$@""#
    static let placementMarker = "volatile-sandbox: cannot join the cgroup through"

    static func spawn(
        _ command: SandboxCommand.Resolved,
        in group: SandboxControlGroup,
        timeout: Duration?,
        teeOutput: Bool
    ) throws(MemoryPressureSandboxError) -> SandboxedProcess {
        let pipes = try CapturePipes()
        let started = ContinuousClock.now
        let pid: pid_t
        do {
            pid = try launch(command, in: group, pipes: pipes)
        } catch {
            pipes.closeReadEnds()
            throw error
        }
        let process = SandboxedProcess(child: SandboxChild(pid: pid), group: group, completion: SandboxCompletion())
        SandboxSupervisor(process: process, pipes: pipes, started: started, timeout: timeout, teeOutput: teeOutput).start()
        return process
    }

    /// Starts the launcher (`/bin/sh`) with the pipes' write ends as its standard output and
    /// error, and closes those write ends in this process either way.
    /// - Returns: The child's pid.
    private static func launch(
        _ command: SandboxCommand.Resolved,
        in group: SandboxControlGroup,
        pipes: CapturePipes
    ) throws(MemoryPressureSandboxError) -> pid_t {
        defer { pipes.closeWriteEnds() }
        var fileActions = fileActions(pipes)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        var attributes = spawnAttributes()
        defer { posix_spawnattr_destroy(&attributes) }

        let arguments = ["/bin/sh", "-c", launcherScript, "volatile-sandbox", group.path + "/cgroup.procs", command.path]
            + command.arguments
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = command.environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        // posix_spawn returns its error instead of setting errno.
        let status = posix_spawn(&pid, "/bin/sh", &fileActions, &attributes, &argv, &envp)
        guard status == 0 else { throw .spawnFailed(errno: Errno(rawValue: status), operation: "posix_spawn /bin/sh") }
        return pid
    }

    /// Standard input from /dev/null, output and error into the pipes, nothing else inherited.
    private static func fileActions(_ pipes: CapturePipes) -> posix_spawn_file_actions_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fileActions, pipes.output.write, 1)
        posix_spawn_file_actions_adddup2(&fileActions, pipes.errors.write, 2)
        // Descriptors another thread opened without O_CLOEXEC must not leak into the child
        // (a leaked pipe end would keep someone else's pipe open). ENOSYS before glibc 2.34.
        _ = vc_spawn_add_close_from(&fileActions, 3)
        return fileActions
    }

    /// Default signal handling, no blocked signals, and a process group of its own.
    private static func spawnAttributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        return attributes
    }
}

/// The child's standard output and error pipes (close-on-exec; read ends non-blocking).
private struct CapturePipes {
    let output: (read: Int32, write: Int32)
    let errors: (read: Int32, write: Int32)

    init() throws(MemoryPressureSandboxError) {
        switch Syscall.pipe() {
        case .success(let pipe): output = pipe
        case .failure(let error): throw .spawnFailed(errno: error, operation: "pipe2")
        }
        switch Syscall.pipe() {
        case .success(let pipe): errors = pipe
        case .failure(let error):
            Syscall.close(output.read)
            Syscall.close(output.write)
            throw .spawnFailed(errno: error, operation: "pipe2")
        }
    }

    func closeWriteEnds() {
        Syscall.close(output.write)
        Syscall.close(errors.write)
    }

    func closeReadEnds() {
        Syscall.close(output.read)
        Syscall.close(errors.read)
    }
}

/// The spawned child's pid, signalled and reaped under one lock: once `waitpid` has reaped it the
/// pid may belong to another process, so a kill must never race with the reap.
final class SandboxChild: Sendable {
    let pid: pid_t
    private let reaped = LockedValue(false)

    init(pid: pid_t) { self.pid = pid }

    /// SIGKILL, unless the child has been reaped already.
    func kill() {
        reaped.withLock { reaped in
            if !reaped { _ = Syscall.kill(pid, SIGKILL) }
        }
    }

    /// Reaps the child if it has ended (`waitpid` with WNOHANG; only ever our own pid).
    ///
    /// - Returns: Its wait status, -1 when something else in this process reaped it (a
    ///   `waitpid(-1)` in a SIGCHLD handler: it has ended, its status is lost), or `nil` while
    ///   it runs.
    func reap() -> Int32? {
        reaped.withLock { reaped -> Int32? in
            switch Syscall.reap(pid) {
            case .success(nil): return nil
            case .success(let status?):
                reaped = true
                return status
            case .failure:
                reaped = true  // ECHILD: reaped elsewhere
                return -1
            }
        }
    }
}

/// The outcome of a child, set once by its supervisor; waiters are resumed outside the lock.
final class SandboxCompletion: Sendable {
    typealias Outcome = Result<SandboxResult, MemoryPressureSandboxError>

    private struct State {
        var outcome: Outcome?
        var waiters: [CheckedContinuation<Outcome, Never>] = []
    }

    private let state = LockedValue(State())

    func wait() async -> Outcome {
        await withCheckedContinuation { continuation in
            let ready: Outcome? = state.withLock { state in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func finish(_ outcome: Outcome) {
        let waiters = state.withLock { state in
            state.outcome = outcome
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
    }
}

/// Runs on its own thread: captures output, enforces the deadline, reaps the child, reads the
/// cgroup's counters and removes the cgroup. Its state is confined to that thread; the type is
/// `@unchecked Sendable` only to be handed to it once.
final class SandboxSupervisor: @unchecked Sendable {
    private let process: SandboxedProcess
    private var outputFD: Int32
    private var errorFD: Int32
    private let started: ContinuousClock.Instant
    private let deadline: ContinuousClock.Instant?
    private let teeOutput: Bool
    private var output: [UInt8] = []
    private var errors: [UInt8] = []

    /// Supervises `process` from `started`, reading the pipes' read ends (it closes them).
    fileprivate init(process: SandboxedProcess, pipes: CapturePipes, started: ContinuousClock.Instant, timeout: Duration?, teeOutput: Bool) {
        self.process = process
        outputFD = pipes.output.read
        errorFD = pipes.errors.read
        self.started = started
        deadline = timeout.map { started + $0 }
        self.teeOutput = teeOutput
    }

    private var child: SandboxChild { process.child }
    private var group: SandboxControlGroup { process.group }
    private var completion: SandboxCompletion { process.completion }

    func start() {
        switch startThread({ self.run() }) {
        case .success(let thread):
            pthread_detach(thread)
        case .failure:
            // No thread: supervise on this one rather than leak a child and a cgroup.
            run()
        }
    }

    private func run() {
        let (waitStatus, timedOut) = superviseUntilExit()
        let wallTime = started.duration(to: .now)
        // Read the counters before the cgroup goes; then kill what is left in it.
        let oomKills = group.oomKillCount()
        let peak = group.peakUsage()
        let limitHits = group.limitHitCount()
        let limit = try? group.limit()
        group.killAll()
        drainUntilClosed()
        let cleanupFailure = group.remove()

        let termination: SandboxResult.Termination =
            waitStatus == -1 ? .reapedElsewhere
            : waitStatus & 0x7f == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(waitStatus & 0x7f)
        let errorText = String(decoding: errors, as: UTF8.self)
        if termination == .exited(125) && errorText.contains(SandboxedProcess.placementMarker) {
            completion.finish(.failure(.placementFailed(message: errorText)))
            return
        }
        completion.finish(.success(SandboxResult(
            termination: termination, oomKillCount: oomKills, peakMemoryBytes: peak,
            limitHitCount: limitHits, finalMemoryLimit: limit, wallTime: wallTime, timedOut: timedOut,
            standardOutput: output, standardError: errors, cgroupPath: group.path,
            cleanupFailure: cleanupFailure)))
    }

    /// Captures output and enforces the deadline until the child is reaped.
    /// - Returns: The wait status (-1 when reaped elsewhere) and whether the deadline killed it.
    private func superviseUntilExit() -> (waitStatus: Int32, timedOut: Bool) {
        // A pidfd makes the exit wake poll at once; without one (Linux < 5.3) poll ticks.
        let pidFD = (try? Syscall.pidfdOpen(child.pid).get()) ?? -1
        defer { if pidFD >= 0 { Syscall.close(pidFD) } }
        var timedOut = false
        while true {
            var fds = pipePollSet()
            if pidFD >= 0 { fds.append(pollfd(fd: pidFD, events: Int16(POLLIN), revents: 0)) }
            var waitMilliseconds: Int32 = pidFD >= 0 ? -1 : 20
            if let deadline, !timedOut {
                let untilDeadline = Int32(clamping: Self.milliseconds(until: deadline))
                waitMilliseconds = waitMilliseconds < 0 ? untilDeadline : min(waitMilliseconds, untilDeadline)
            }
            _ = Syscall.poll(&fds, timeoutMilliseconds: waitMilliseconds)
            drainPipes()
            if let status = child.reap() { return (status, timedOut) }
            if let deadline, !timedOut, ContinuousClock.now >= deadline {
                timedOut = true
                group.killAll()
                child.kill()
            }
        }
    }

    /// Reads the pipes to end of file, bounded to a second: grandchildren may still hold them,
    /// or a process outside the cgroup inherited them. Closes them after.
    private func drainUntilClosed() {
        let drainDeadline = ContinuousClock.now + .seconds(1)
        while (outputFD >= 0 || errorFD >= 0) && ContinuousClock.now < drainDeadline {
            var fds = pipePollSet()
            _ = Syscall.poll(&fds, timeoutMilliseconds: 50)
            drainPipes()
        }
        if outputFD >= 0 { Syscall.close(outputFD) }
        if errorFD >= 0 { Syscall.close(errorFD) }
    }

    /// Poll entries for the capture pipes still open.
    private func pipePollSet() -> [pollfd] {
        [outputFD, errorFD].filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    }

    /// Milliseconds from now to `deadline`, rounded up, at least 0 and at most a minute (poll
    /// is re-armed after each wake anyway).
    private static func milliseconds(until deadline: ContinuousClock.Instant) -> Int64 {
        let left = ContinuousClock.now.duration(to: deadline).components
        return max(0, min(60_000, left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000 + 1))
    }

    private func drainPipes() {
        drain(&outputFD, into: &output)
        drain(&errorFD, into: &errors)
    }

    private func drain(_ fd: inout Int32, into buffer: inout [UInt8]) {
        guard fd >= 0 else { return }
        while true {
            switch Syscall.read(fd, capacity: 65536) {
            case .success(let chunk) where chunk.isEmpty:
                Syscall.close(fd)
                fd = -1
                return
            case .success(let chunk):
                buffer += chunk
                if teeOutput {
                    _ = chunk.withUnsafeBytes { Syscall.write(2, from: $0) }
                }
            case .failure:
                return  // EAGAIN: nothing more for now
            }
        }
    }
}
