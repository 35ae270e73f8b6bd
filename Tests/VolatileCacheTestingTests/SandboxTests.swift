import Glibc
import Testing
import VolatileCacheTesting

/// Python workloads: `bytearray(n)` and written mmap chunks really touch their memory.
private enum Workload {
    /// Writes `mebibytes` MiB in 4 MiB private anonymous chunks and keeps them all.
    static func touch(mebibytes: Int) -> SandboxCommand {
        python("""
            import mmap, sys
            keep = []
            for i in range(\(mebibytes / 4)):
                m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE)
                m.write(b"x" * (4 << 20))
                keep.append(m)
            print("warning: on stderr", file=sys.stderr)
            print("touched", len(keep) * 4)
            """)
    }

    static func python(_ script: String) -> SandboxCommand {
        .executable("/usr/bin/python3", arguments: ["-c", script])
    }
}

private func folderExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

@Suite(.requiresMemoryPressureSandbox, .serialized)
struct SandboxTests {
    @Test func childTouchingTwiceItsLimitIsOOMKilled() async throws {
        let sandbox = try MemoryPressureSandbox()
        let result = try await sandbox.run(Workload.touch(mebibytes: 64), memoryLimit: 32 << 20, timeout: .seconds(20))
        #expect(result.termination == .signaled(SIGKILL), "\(result)")
        #expect(result.wasOOMKilled)
        #expect((result.oomKillCount ?? 0) >= 1)
        #expect(!result.timedOut)
        #expect(result.standardOutputText.contains("touched") == false)
        #expect(result.cleanupFailure == nil)
        #expect(!folderExists(result.cgroupPath))
        if let peak = result.peakMemoryBytes {
            #expect(peak <= 32 << 20)
            #expect(peak >= 24 << 20)
        }
    }

    @Test func childUnderItsLimitExitsZeroWithCapturedOutput() async throws {
        let sandbox = try MemoryPressureSandbox()
        let result = try await sandbox.run(Workload.touch(mebibytes: 16), memoryLimit: 64 << 20, timeout: .seconds(20))
        #expect(result.termination == .exited(0), "\(result) \(result.standardErrorText)")
        #expect(!result.wasOOMKilled)
        #expect(result.lastOutputLine == "touched 16")
        #expect(result.standardErrorText.contains("warning: on stderr"))
        #expect((result.peakMemoryBytes ?? .max) >= 16 << 20)
        #expect(result.finalMemoryLimit == 64 << 20)
        #expect(!folderExists(result.cgroupPath))
    }

    @Test func exitStatusAndCgroupMembershipAreReported() async throws {
        let sandbox = try MemoryPressureSandbox()
        // The child prints its own cgroup: it must already be the sandbox's when its code runs.
        let result = try await sandbox.run(
            .executable("/bin/sh", arguments: ["-c", "cat /proc/self/cgroup; exit 3"]), memoryLimit: 32 << 20)
        #expect(result.termination == .exited(3))
        let folderName = String(result.cgroupPath.split(separator: "/").last!)
        #expect(result.standardOutputText.contains(folderName), "\(result.standardOutputText)")
    }

    @Test func limitCanBeChangedWhileTheChildRuns() async throws {
        let sandbox = try MemoryPressureSandbox()
        // The child watches its own limit file and prints the value once it changes. It
        // creates `ready` once it has read the first value: the limit is changed only then
        // (a fixed sleep lost the race to a slow interpreter start-up on a loaded machine).
        let ready = "/tmp/volatile-sandbox-ready-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { unlink(ready) }
        let child = try sandbox.start(Workload.python("""
            import time
            line = [l for l in open("/proc/self/cgroup").read().splitlines() if ":memory:" in l or l.startswith("0::")][0]
            rel = line.split(":", 2)[2]
            path = "/sys/fs/cgroup/memory" + rel + "/memory.limit_in_bytes"
            try:
                open(path).read()
            except OSError:
                path = "/sys/fs/cgroup" + rel + "/memory.max"
            first = open(path).read().strip()
            print("start", first, flush=True)
            open("\(ready)", "w").close()
            deadline = time.time() + 10
            while time.time() < deadline:
                now = open(path).read().strip()
                if now != first:
                    print(now)
                    break
                time.sleep(0.01)
            """), memoryLimit: 64 << 20, timeout: .seconds(20))
        #expect(try child.memoryLimit() == 64 << 20)
        let deadline = ContinuousClock.now + .seconds(15)
        while access(ready, F_OK) != 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try child.memoryUsage() > 0)
        try child.setMemoryLimit(32 << 20)
        #expect(try child.memoryLimit() == 32 << 20)
        let result = try await child.result()
        #expect(result.termination == .exited(0), "\(result) \(result.standardErrorText)")
        #expect(result.standardOutputText.hasPrefix("start \(64 << 20)"))
        #expect(result.lastOutputLine == "\(32 << 20)")
        #expect(result.finalMemoryLimit == 32 << 20)
        #expect(!folderExists(result.cgroupPath))
    }

    @Test func timeoutKillsTheChildAndSaysSo() async throws {
        let sandbox = try MemoryPressureSandbox()
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await sandbox.run(.executable("/bin/sleep", arguments: ["30"]), memoryLimit: 32 << 20, timeout: .milliseconds(300))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGKILL))
        #expect(!result.wasOOMKilled)
        #expect(started.duration(to: clock.now) < .seconds(5))
        #expect(!folderExists(result.cgroupPath))
    }

    @Test func missingExecutableThrowsAndLeavesNoCgroup() async throws {
        let sandbox = try MemoryPressureSandbox()
        let before = cgroupChildren(of: sandbox.parentPath)
        #expect(throws: MemoryPressureSandboxError.executableNotFound(path: "/nonexistent/workload")) {
            _ = try sandbox.start(.executable("/nonexistent/workload"), memoryLimit: 32 << 20)
        }
        #expect(cgroupChildren(of: sandbox.parentPath) == before)
    }

    @Test func aRejectedLimitRemovesTheCgroupItWasSetOn() async throws {
        let sandbox = try MemoryPressureSandbox()
        let before = cgroupChildren(of: sandbox.parentPath)
        // The cgroup is created first; the kernel then refuses the limit (EINVAL on v1 and v2).
        #expect {
            _ = try sandbox.start(.executable("/bin/true"), memoryLimit: -5)
        } throws: { error in
            guard case MemoryPressureSandboxError.limitRejected(bytes: -5, _) = error else { return false }
            return true
        }
        #expect(cgroupChildren(of: sandbox.parentPath) == before)
    }

    @Test func theChildIsReapedBeforeTheResultIsReturned() async throws {
        let sandbox = try MemoryPressureSandbox()
        for command in [SandboxCommand.executable("/bin/true"), .executable("/bin/sleep", arguments: ["30"])] {
            let child = try sandbox.start(command, memoryLimit: 32 << 20, timeout: .milliseconds(200))
            #expect(folderExists(child.cgroupPath))
            let result = try await child.result()
            // A zombie would still have a /proc entry; a reaped child has none.
            #expect(!folderExists("/proc/\(child.pid)"), "\(command): \(result)")
            #expect(!folderExists(result.cgroupPath))
            #expect(result.cleanupFailure == nil)
            #expect(try await child.result() == result)
        }
    }

    @Test func killEndsTheChildAndItsCgroup() async throws {
        let sandbox = try MemoryPressureSandbox()
        let child = try sandbox.start(.executable("/bin/sleep", arguments: ["30"]), memoryLimit: 32 << 20, timeout: .seconds(20))
        child.kill()
        let result = try await child.result()
        #expect(result.termination == .signaled(SIGKILL))
        #expect(!result.timedOut)
        #expect(result.wallTime < .seconds(10))
        #expect(!folderExists(result.cgroupPath))
    }

    @Test func cancellingTheWaitingTaskKillsTheChild() async throws {
        let sandbox = try MemoryPressureSandbox()
        let child = try sandbox.start(.executable("/bin/sleep", arguments: ["30"]), memoryLimit: 32 << 20, timeout: .seconds(20))
        let waiter = Task { try await child.result() }
        waiter.cancel()
        let result = try await waiter.value
        #expect(result.termination == .signaled(SIGKILL))
        #expect(!result.timedOut)
        #expect(!folderExists(result.cgroupPath))
    }

    @Test func anEntryPointThatThrowsOrDoesNotExistEndsTheChildWithAStatus() async throws {
        let sandbox = try MemoryPressureSandbox()
        let throwing = try await sandbox.run(
            .entryPoint("throw", testFilter: "sandboxEntryPointDispatcher"), memoryLimit: 64 << 20, timeout: .seconds(30))
        #expect(throwing.termination == .exited(1), "\(throwing) \(throwing.standardErrorText)")
        #expect(throwing.standardErrorText.contains("entry point throw threw"))
        let missing = try await sandbox.run(
            .entryPoint("no-such-entry", testFilter: "sandboxEntryPointDispatcher"), memoryLimit: 64 << 20, timeout: .seconds(30))
        #expect(missing.termination == .exited(2), "\(missing) \(missing.standardErrorText)")
        #expect(missing.standardErrorText.contains("no entry point named no-such-entry"))
    }

    @Test func reentersTheTestBinaryAtAnEntryPoint() async throws {
        let sandbox = try MemoryPressureSandbox()
        let result = try await sandbox.run(
            .entryPoint("touch-and-report", testFilter: "sandboxEntryPointDispatcher", environment: ["WORKLOAD_MIB": "8"]),
            memoryLimit: 64 << 20, timeout: .seconds(30))
        #expect(result.termination == .exited(0), "\(result) \(result.standardErrorText)")
        #expect(result.lastOutputLine == "entry point touched 8 MiB")
        #expect(!folderExists(result.cgroupPath))
    }

    private func cgroupChildren(of parent: String) -> [String] {
        guard let directory = opendir(parent) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix("volatile-sandbox-\(getpid())-") { names.append(name) }
        }
        return names.sorted()
    }
}

/// The dispatcher a re-entered child runs (`--filter sandboxEntryPointDispatcher`); a no-op in a
/// normal test run.
@Test func sandboxEntryPointDispatcher() async {
    await MemoryPressureSandbox.runEntryPointIfRequested([
        MemoryPressureSandbox.EntryPoint("touch-and-report") {
            let mebibytes = getenv("WORKLOAD_MIB").flatMap { Int(String(cString: $0)) } ?? 1
            let count = mebibytes << 20
            let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
            defer { memory.deallocate() }
            for offset in stride(from: 0, to: count, by: 4096) { memory[offset] = 1 }
            print("entry point touched \(mebibytes) MiB")
        },
        MemoryPressureSandbox.EntryPoint("throw") {
            throw MemoryPressureSandboxError.unavailable(reason: "thrown on purpose")
        },
    ])
}

@Suite struct SandboxAvailabilityTests {
    @Test func nonexistentParentIsUnavailableWithAReason() {
        #expect {
            _ = try MemoryPressureSandbox(parentPath: "/nonexistent/cgroup/root")
        } throws: { error in
            guard case MemoryPressureSandboxError.unavailable(let reason) = error else { return false }
            return reason.contains("/nonexistent/cgroup/root")
        }
    }

    @Test func folderThatIsNoCgroupIsUnavailable() {
        #expect {
            _ = try MemoryPressureSandbox(parentPath: "/tmp")
        } throws: { error in
            guard case MemoryPressureSandboxError.unavailable(let reason) = error else { return false }
            return reason.contains("not a memory cgroup")
        }
    }

    @Test func policySkipsOrFails() {
        let unavailable = MemoryPressureSandbox.Availability.unavailable(reason: "no cgroups here")
        #expect(PressureTestPolicy.decision(availability: unavailable, requirePressureTests: false)
            == .skip(reason: "memory-pressure sandbox unavailable: no cgroups here"))
        guard case .fail(let reason) = PressureTestPolicy.decision(availability: unavailable, requirePressureTests: true) else {
            Issue.record("required pressure tests must fail when unavailable")
            return
        }
        #expect(reason.contains("no cgroups here"))
        #expect(PressureTestPolicy.decision(availability: .available(hierarchy: .v1, parentPath: "/x"), requirePressureTests: true) == .run)
    }

    @Test func findsExecutablesInTheBuildFolder() throws {
        let current = try MemoryPressureSandbox.currentExecutablePath()
        let name = String(current.split(separator: "/").last!)
        #expect(MemoryPressureSandbox.siblingExecutable(named: name) == current)
        #expect(MemoryPressureSandbox.siblingExecutable(named: "no-such-executable-here") == nil)
    }
}
