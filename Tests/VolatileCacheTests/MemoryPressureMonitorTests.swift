import Glibc
import Synchronization
import VolatileSystem
import Testing
@testable import VolatileCache
import VolatileCacheTesting

/// Collects a monitor's events and waits for one that matches.
private final class EventRecorder: Sendable {
    private let events = LockedValue<[(MemoryPressureEvent, isMonitorThread: Bool)]>([])
    private let testThread = pthread_self()

    var handler: @Sendable (MemoryPressureEvent) -> Void {
        { [self] event in
            let onOtherThread = pthread_equal(pthread_self(), testThread) == 0
            events.withLock { $0.append((event, onOtherThread)) }
        }
    }

    var all: [MemoryPressureEvent] { events.withLock { $0.map(\.0) } }
    var allOnOtherThreads: Bool { events.withLock { $0.allSatisfy(\.isMonitorThread) } }

    func waitFor(
        _ timeout: Duration,
        _ matches: (MemoryPressureEvent) -> Bool
    ) async -> MemoryPressureEvent? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let found = all.first(where: matches) { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return all.first(where: matches)
    }
}

/// Writes `mebibytes` MiB in 4 MiB chunks, each made volatile with MADV_FREE after writing:
/// inside a small cgroup that is steady reclaim (pressure) without an OOM kill.
private func volatileChurn(mebibytes: Int) -> SandboxCommand {
    .executable("/usr/bin/python3", arguments: ["-c", """
        import mmap
        keep = []
        for i in range(\(mebibytes / 4)):
            m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE)
            m.write(b"x" * (4 << 20))
            m.madvise(mmap.MADV_FREE)
            keep.append(m)
        print("churned", len(keep) * 4)
        """])
}

@Suite struct MemoryPressureMonitorTests {
    @Test func simulatedEventsArriveOnTheMonitorThread() async throws {
        let recorder = EventRecorder()
        let monitor = try MemoryPressureMonitor(source: .simulated, handler: recorder.handler)
        defer { monitor.stop() }
        #expect(monitor.activeSource.kind == .simulated)
        monitor.simulate(.critical)
        let event = await recorder.waitFor(.seconds(5)) { _ in true }
        #expect(event?.level == .critical)
        #expect(event?.isSimulated == true)
        #expect(event?.source == .simulated)
        #expect(recorder.allOnOtherThreads)
        #expect(monitor.deliveredEventCount >= 1)
    }

    @Test func stopEndsDeliveryAndIsIdempotent() async throws {
        let recorder = EventRecorder()
        let monitor = try MemoryPressureMonitor(source: .simulated, handler: recorder.handler)
        #expect(monitor.isRunning)
        monitor.stop()
        monitor.stop()
        #expect(!monitor.isRunning)
        monitor.simulate(.low)
        try await Task.sleep(for: .milliseconds(100))
        #expect(recorder.all.isEmpty)
    }

    @Test func handlerMayStopTheMonitor() async throws {
        let box = LockedValue<MemoryPressureMonitor?>(nil)
        let recorder = EventRecorder()
        let monitor = try MemoryPressureMonitor(source: .simulated) { event in
            recorder.handler(event)
            box.withLock { $0 }?.stop()
        }
        box.withLock { $0 = monitor }
        monitor.simulate(.medium)
        _ = await recorder.waitFor(.seconds(5)) { _ in true }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!monitor.isRunning)
        box.withLock { $0 = nil }
    }

    @Test func explicitSourceThatCannotOpenThrowsTypedError() {
        #expect(throws: MemoryPressureMonitorError.self) {
            _ = try MemoryPressureMonitor(source: .cgroupV1PressureLevel(cgroupPath: "/nonexistent/cgroup")) { _ in }
        }
        do {
            _ = try MemoryPressureMonitor(source: .cgroupV2PSI(cgroupPath: "/nonexistent/cgroup")) { _ in }
            Issue.record("opening a nonexistent cgroup must fail")
        } catch {
            guard case .sourceUnavailable(let kind, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(kind == .cgroupV2PSI)
            #expect(reason.contains("/nonexistent/cgroup/memory.pressure"))
        }
    }

    @Test func automaticReportsWhyItPassedSourcesOver() throws {
        // A location with no cgroups at all: only the system-wide PSI file can remain.
        let location = ControlGroupLocation(v1Memory: nil, v2: nil)
        do {
            let monitor = try MemoryPressureMonitor(source: .automatic, location: location) { _ in }
            defer { monitor.stop() }
            #expect(monitor.activeSource.kind == .systemPSI)
            #expect(monitor.rejectedSources.map(\.kind) == [.cgroupV2PSI, .cgroupV1PressureLevel])
        } catch {
            guard case .noSourceAvailable(let rejected) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(rejected.map(\.kind) == [.cgroupV2PSI, .cgroupV1PressureLevel, .systemPSI])
        }
    }

    @Test func parsesCgroupLocations() {
        let location = ControlGroupLocation.parse(
            procSelfCGroup: "4:memory:/process_api/abc\n1:cpu:/\n0::/user.slice/test\n",
            mountInfo: """
                35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
                41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
                """)
        #expect(location.v1Memory == "/sys/fs/cgroup/memory/process_api/abc")
        #expect(location.v2 == "/sys/fs/cgroup/unified/user.slice/test")
        let v2Only = ControlGroupLocation.parse(
            procSelfCGroup: "0::/\n",
            mountInfo: "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
        #expect(v2Only == ControlGroupLocation(v1Memory: nil, v2: "/sys/fs/cgroup"))
    }
}

/// Real kernel notifications, produced by a child squeezed in a sandbox cgroup.
@Suite(.requiresMemoryPressureSandbox, .serialized)
struct MemoryPressureMonitorKernelTests {
    @Test func v1PressureLevelFiresForReclaimInAChildCgroup() async throws {
        let sandbox = try MemoryPressureSandbox()
        guard sandbox.hierarchy == .v1 else { try Test.cancel("needs the cgroup v1 memory controller") }
        let recorder = EventRecorder()
        // Listening on our own cgroup: events of the sandbox child propagate up to it.
        let monitor = try MemoryPressureMonitor(source: .cgroupV1PressureLevel(), handler: recorder.handler)
        defer { monitor.stop() }
        #expect(monitor.activeSource.kind == .cgroupV1PressureLevel)
        let result = try await sandbox.run(volatileChurn(mebibytes: 512), memoryLimit: 32 << 20, timeout: .seconds(30))
        #expect(result.termination == .exited(0), "\(result)")
        let event = await recorder.waitFor(.seconds(2)) { !$0.isSimulated }
        #expect(event != nil, "reclaim in a child cgroup produced no memory.pressure_level event")
        #expect(event?.source == .cgroupV1PressureLevel)
    }

    @Test func v1PressureLevelReportsCriticalBeforeAnOOMKill() async throws {
        let sandbox = try MemoryPressureSandbox()
        guard sandbox.hierarchy == .v1 else { try Test.cancel("needs the cgroup v1 memory controller") }
        let recorder = EventRecorder()
        let monitor = try MemoryPressureMonitor(source: .automatic, handler: recorder.handler)
        defer { monitor.stop() }
        let result = try await sandbox.run(
            .executable("/usr/bin/python3", arguments: ["-c", "b = bytearray(96 << 20)"]),
            memoryLimit: 32 << 20, timeout: .seconds(30))
        #expect(result.wasOOMKilled, "\(result)")
        let event = await recorder.waitFor(.seconds(2)) { $0.level == .critical }
        #expect(event != nil, "no critical event; got \(recorder.all)")
    }

    @Test func systemPSITriggerFiresUnderReclaimStalls() async throws {
        let sandbox = try MemoryPressureSandbox()
        let recorder = EventRecorder()
        // A sensitive trigger (10 ms of stall in 2 s) so a few seconds of churn are enough.
        let trigger = MemoryPressureMonitor.PSITrigger(.some, stallMicroseconds: 10_000, windowMicroseconds: 2_000_000, level: .medium)
        let monitor: MemoryPressureMonitor
        do {
            monitor = try MemoryPressureMonitor(source: .systemPSI(triggers: [trigger]), handler: recorder.handler)
        } catch {
            try Test.cancel("no PSI here: \(error)")
        }
        defer { monitor.stop() }
        var event: MemoryPressureEvent?
        for _ in 0..<3 where event == nil {
            _ = try await sandbox.run(volatileChurn(mebibytes: 1024), memoryLimit: 32 << 20, timeout: .seconds(30))
            event = await recorder.waitFor(.seconds(1)) { !$0.isSimulated }
        }
        #expect(event?.source == .systemPSI, "no PSI event after reclaim churn; /proc/pressure/memory: \((try? Syscall.readText("/proc/pressure/memory").get()) ?? "?")")
        #expect(event?.level == .medium)
    }
}
