// Choosing and opening the kernel's memory-pressure notification sources.

import Glibc
import VolatileSystem

extension MemoryPressureMonitor {
    /// The kinds of notification source a monitor can use.
    public enum SourceKind: String, Sendable, Hashable, CustomStringConvertible {
        /// A PSI trigger on a cgroup v2 `memory.pressure` file.
        case cgroupV2PSI
        /// Cgroup v1 `memory.pressure_level` notifications through `cgroup.event_control` and eventfds.
        case cgroupV1PressureLevel
        /// A PSI trigger on the system-wide `/proc/pressure/memory`.
        case systemPSI
        /// No kernel source: only ``MemoryPressureMonitor/simulate(_:)`` produces events.
        case simulated

        /// The raw value, for example `cgroupV1PressureLevel`.
        public var description: String { rawValue }
    }

    /// Which stall a PSI trigger measures.
    public enum PSIStallKind: String, Sendable, Hashable {
        /// At least one task was stalled on memory.
        case some
        /// All non-idle tasks were stalled on memory at once.
        case full
    }

    /// A PSI trigger: notify when tasks stalled on memory for `stallMicroseconds` within a
    /// `windowMicroseconds` window (the kernel's `"some 150000 1000000"` syntax).
    ///
    /// The kernel accepts windows from 500 ms to 10 s; without CAP_SYS_RESOURCE the window must be
    /// a multiple of 2 s. The monitor retries a refused trigger with its window rounded up to a
    /// multiple of 2 s and reports that in ``MemoryPressureMonitor/activeSource``. The kernel
    /// notifies at most once per window for each trigger.
    public struct PSITrigger: Sendable, Hashable, CustomStringConvertible {
        /// `some` or `full` stall.
        public var stall: PSIStallKind
        /// Stall time, in microseconds, that fires the trigger.
        public var stallMicroseconds: Int
        /// The window, in microseconds, in which the stall time is measured.
        public var windowMicroseconds: Int
        /// The level reported when this trigger fires.
        public var level: MemoryPressureLevel

        /// Creates a trigger.
        ///
        /// - Parameters:
        ///   - stall: `some` (one task stalled) or `full` (all non-idle tasks stalled).
        ///   - stallMicroseconds: Stall time that fires the trigger; must be below the window.
        ///   - windowMicroseconds: Window length, 500 000 to 10 000 000.
        ///   - level: The level events from this trigger carry.
        public init(
            _ stall: PSIStallKind,
            stallMicroseconds: Int,
            windowMicroseconds: Int,
            level: MemoryPressureLevel
        ) {
            self.stall = stall
            self.stallMicroseconds = stallMicroseconds
            self.windowMicroseconds = windowMicroseconds
            self.level = level
        }

        /// `some 150 ms in 1 s` as medium and `full 150 ms in 1 s` as critical.
        public static let defaults: [PSITrigger] = [
            PSITrigger(.some, stallMicroseconds: 150_000, windowMicroseconds: 1_000_000, level: .medium),
            PSITrigger(.full, stallMicroseconds: 150_000, windowMicroseconds: 1_000_000, level: .critical),
        ]

        /// The text written to the pressure file, for example `some 150000 1000000`.
        public var description: String { "\(stall.rawValue) \(stallMicroseconds) \(windowMicroseconds)" }
    }

    /// How cgroup v1 `memory.pressure_level` events propagate (the optional mode of the
    /// registration).
    public enum V1PropagationMode: String, Sendable, Hashable {
        /// Events go to the nearest cgroup (this one or an ancestor) that has a listener.
        case `default`
        /// Events reach every ancestor's listeners, whether or not a nearer cgroup listens.
        case hierarchy
        /// Only pressure in this cgroup itself, not in its descendants.
        case local
    }

    /// Where the monitor gets its notifications from.
    public enum Source: Sendable, Hashable {
        /// Tries, in order: the process's cgroup v2 `memory.pressure` (only when the process is in
        /// a cgroup v2 memory cgroup), the process's cgroup v1 `memory.pressure_level`, then
        /// the system-wide `/proc/pressure/memory`; with the default triggers and mode.
        case automatic
        /// A PSI trigger on a cgroup v2 `memory.pressure` file.
        ///
        /// - `cgroupPath`: the cgroup folder, or `nil` for the process's own v2 cgroup.
        case cgroupV2PSI(cgroupPath: String? = nil, triggers: [PSITrigger] = PSITrigger.defaults)
        /// Cgroup v1 `memory.pressure_level` notifications for low, medium and critical.
        ///
        /// - `cgroupPath`: the memory cgroup folder, or `nil` for the process's own v1 memory
        ///   cgroup. Pressure in descendant cgroups is reported too unless `mode` is `.local`.
        case cgroupV1PressureLevel(cgroupPath: String? = nil, mode: V1PropagationMode = .default)
        /// A PSI trigger on the system-wide `/proc/pressure/memory`.
        case systemPSI(triggers: [PSITrigger] = PSITrigger.defaults)
        /// No kernel source; events come only from ``MemoryPressureMonitor/simulate(_:)``.
        case simulated

        var kind: SourceKind? {
            switch self {
            case .automatic: nil
            case .cgroupV2PSI: .cgroupV2PSI
            case .cgroupV1PressureLevel: .cgroupV1PressureLevel
            case .systemPSI: .systemPSI
            case .simulated: .simulated
            }
        }
    }

    /// The source a monitor uses.
    public struct ActiveSource: Sendable, Hashable, CustomStringConvertible {
        /// Its kind.
        public var kind: SourceKind
        /// The file notifications come from (`memory.pressure`, `memory.pressure_level`), or
        /// `nil` for the simulated source.
        public var path: String?
        /// What was registered, for example `low,medium,critical (mode default)` or
        /// `some 150000 2000000 (window rounded up to a multiple of 2 s)`.
        public var detail: String

        /// For example `cgroupV1PressureLevel at /sys/fs/.../memory.pressure_level: low,medium,critical`.
        public var description: String {
            "\(kind)" + (path.map { " at \($0)" } ?? "") + (detail.isEmpty ? "" : ": \(detail)")
        }
    }

    /// A source that ``Source/automatic`` tried and could not use, and why.
    public struct RejectedSource: Sendable, Hashable, CustomStringConvertible {
        /// Its kind.
        public var kind: SourceKind
        /// Why it was not used.
        public var reason: String

        /// `kind: reason`.
        public var description: String { "\(kind): \(reason)" }
    }
}

/// Descriptors of an opened source; the monitor thread polls them. Owned by `MonitorWorker`.
struct OpenedSource {
    struct Watch {
        var fd: Int32
        var level: MemoryPressureLevel
        /// PSI triggers signal POLLPRI; eventfds signal POLLIN and must be drained.
        var isEventFD: Bool
    }

    var active: MemoryPressureMonitor.ActiveSource
    var watches: [Watch]

    func closeAll() {
        for watch in watches { Syscall.close(watch.fd) }
    }
}

extension OpenedSource {
    /// Opens `source`; for `.automatic` also returns the sources it passed over.
    static func open(
        _ source: MemoryPressureMonitor.Source,
        location: ControlGroupLocation
    ) throws(MemoryPressureMonitorError) -> (OpenedSource, [MemoryPressureMonitor.RejectedSource]) {
        switch source {
        case .automatic:
            var rejected: [MemoryPressureMonitor.RejectedSource] = []
            let candidates: [MemoryPressureMonitor.Source] = [
                .cgroupV2PSI(), .cgroupV1PressureLevel(), .systemPSI(),
            ]
            for candidate in candidates {
                switch openExplicit(candidate, location: location, automatic: true) {
                case .success(let opened): return (opened, rejected)
                case .failure(let reason):
                    rejected.append(.init(kind: candidate.kind!, reason: reason.message))
                }
            }
            throw .noSourceAvailable(rejected)
        default:
            switch openExplicit(source, location: location, automatic: false) {
            case .success(let opened): return (opened, [])
            case .failure(let reason): throw .sourceUnavailable(kind: source.kind!, reason: reason.message)
            }
        }
    }

    struct Reason: Error { var message: String }

    private static func openExplicit(
        _ source: MemoryPressureMonitor.Source,
        location: ControlGroupLocation,
        automatic: Bool
    ) -> Result<OpenedSource, Reason> {
        switch source {
        case .automatic:
            preconditionFailure("automatic is resolved by the caller")
        case .simulated:
            return .success(OpenedSource(active: .init(kind: .simulated, path: nil, detail: "simulated events only"), watches: []))
        case .cgroupV2PSI(let cgroupPath, let triggers):
            guard let folder = cgroupPath ?? location.v2 else {
                return .failure(Reason(message: "no cgroup v2 hierarchy is mounted for this process"))
            }
            if automatic {
                // Only a cgroup with the memory controller measures this process's memory alone;
                // the root's file (or one without the controller) is left to systemPSI.
                let controllers = (try? Syscall.readText(folder + "/cgroup.controllers").get()) ?? ""
                guard controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("memory") else {
                    return .failure(Reason(message: "the process's cgroup v2 \(folder) has no memory controller (cgroup.controllers: \(controllers.trimmingNewline.isEmpty ? "empty" : controllers.trimmingNewline))"))
                }
            }
            return openPSI(kind: .cgroupV2PSI, path: folder + "/memory.pressure", triggers: triggers)
        case .systemPSI(let triggers):
            return openPSI(kind: .systemPSI, path: "/proc/pressure/memory", triggers: triggers)
        case .cgroupV1PressureLevel(let cgroupPath, let mode):
            guard let folder = cgroupPath ?? location.v1Memory else {
                return .failure(Reason(message: "the process is in no cgroup v1 memory hierarchy"))
            }
            return openV1(folder: folder, mode: mode)
        }
    }

    private static func openPSI(
        kind: MemoryPressureMonitor.SourceKind,
        path: String,
        triggers: [MemoryPressureMonitor.PSITrigger]
    ) -> Result<OpenedSource, Reason> {
        guard !triggers.isEmpty else { return .failure(Reason(message: "no PSI trigger given")) }
        var watches: [Watch] = []
        var details: [String] = []
        func fail(_ message: String) -> Result<OpenedSource, Reason> {
            for watch in watches { Syscall.close(watch.fd) }
            return .failure(Reason(message: message))
        }
        for trigger in triggers {
            // One trigger per open file description: the kernel keeps it until the fd is closed.
            let fd: Int32
            switch Syscall.open(path, O_RDWR | O_NONBLOCK) {
            case .success(let value): fd = value
            case .failure(let error): return fail("cannot open \(path): \(error)")
            }
            // The trailing NUL matters: /proc/pressure/* overwrites the last byte written with
            // one, so without it "2000000" would arrive as "200000" (measured: EINVAL).
            var written = trigger
            var result = Syscall.write(fd, trigger.description + "\0")
            if case .failure(let error) = result, error == .invalidArgument,
               trigger.windowMicroseconds % 2_000_000 != 0 {
                // Without CAP_SYS_RESOURCE the window must be a multiple of 2 s.
                written.windowMicroseconds = (trigger.windowMicroseconds / 2_000_000 + 1) * 2_000_000
                written.windowMicroseconds = min(written.windowMicroseconds, 10_000_000)
                result = Syscall.write(fd, written.description + "\0")
            }
            if case .failure(let error) = result {
                Syscall.close(fd)
                return fail("writing trigger \"\(written)\" to \(path) failed: \(error)")
            }
            watches.append(Watch(fd: fd, level: trigger.level, isEventFD: false))
            details.append(
                "\(written) as \(trigger.level)"
                    + (written == trigger ? "" : " (window rounded up to a multiple of 2 s)"))
        }
        return .success(OpenedSource(
            active: .init(kind: kind, path: path, detail: details.joined(separator: ", ")),
            watches: watches))
    }

    private static func openV1(folder: String, mode: MemoryPressureMonitor.V1PropagationMode) -> Result<OpenedSource, Reason> {
        let levelPath = folder + "/memory.pressure_level"
        let controlPath = folder + "/cgroup.event_control"
        let levelFD: Int32
        switch Syscall.open(levelPath, O_RDONLY) {
        case .success(let value): levelFD = value
        case .failure(let error): return .failure(Reason(message: "cannot open \(levelPath): \(error)"))
        }
        defer { Syscall.close(levelFD) }
        let controlFD: Int32
        switch Syscall.open(controlPath, O_WRONLY) {
        case .success(let value): controlFD = value
        case .failure(let error): return .failure(Reason(message: "cannot open \(controlPath) for writing: \(error)"))
        }
        defer { Syscall.close(controlFD) }
        // One eventfd per level, registered low first: a listener hears its level and higher
        // ones, and in the default mode the kernel signals only the first matching listener of
        // a cgroup, newest first; the monitor reports the highest level that fired either way.
        var watches: [Watch] = []
        for level in MemoryPressureLevel.allCases {
            let eventFD: Int32
            switch Syscall.eventfd() {
            case .success(let value): eventFD = value
            case .failure(let error):
                for watch in watches { Syscall.close(watch.fd) }
                return .failure(Reason(message: "eventfd failed: \(error)"))
            }
            let line = "\(eventFD) \(levelFD) \(level),\(mode.rawValue)"
            if case .failure(let error) = Syscall.write(controlFD, line) {
                Syscall.close(eventFD)
                for watch in watches { Syscall.close(watch.fd) }
                return .failure(Reason(message: "registering \"\(level),\(mode.rawValue)\" in \(controlPath) failed: \(error)"))
            }
            // Closing the eventfd later unregisters the listener; the other two files are not kept.
            watches.append(Watch(fd: eventFD, level: level, isEventFD: true))
        }
        return .success(OpenedSource(
            active: .init(kind: .cgroupV1PressureLevel, path: levelPath, detail: "low,medium,critical (mode \(mode.rawValue))"),
            watches: watches))
    }
}

extension String {
    fileprivate var trimmingNewline: Substring {
        var text = self[...]
        while text.last == "\n" || text.last == " " { text = text.dropLast() }
        return text
    }
}
