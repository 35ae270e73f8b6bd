/// How hard the kernel is working to find memory.
///
/// Cgroup v1 `memory.pressure_level` reports these three levels directly. A PSI trigger reports
/// the level it was configured with (see ``MemoryPressureMonitor/PSITrigger``).
public enum MemoryPressureLevel: Int, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
    /// Reclaim is running: a good time to make cold data volatile.
    case low = 1
    /// Reclaim is struggling (v1: 60 % of scanned pages could not be reclaimed; PSI: tasks stall).
    case medium = 2
    /// The system is about to OOM-kill or thrash: shed everything that can be regenerated.
    case critical = 3

    /// Whether `lhs` is a lower level than `rhs` (`.low < .medium < .critical`).
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The name the cgroup v1 interface uses: `low`, `medium` or `critical`.
    public var description: String {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .critical: "critical"
        }
    }
}

/// One notification from a ``MemoryPressureMonitor``.
///
/// Several kernel notifications that arrive together are coalesced into one event carrying the
/// highest level among them and how many there were.
public struct MemoryPressureEvent: Sendable, Hashable, CustomStringConvertible {
    /// The highest level among the notifications this event coalesces.
    public var level: MemoryPressureLevel
    /// The kind of source that produced the event.
    public var source: MemoryPressureMonitor.SourceKind
    /// How many kernel notifications (or simulated events) this event coalesces; at least 1.
    public var notificationCount: UInt64
    /// `true` when the event came from ``MemoryPressureMonitor/simulate(_:)``.
    public var isSimulated: Bool

    /// Creates an event.
    ///
    /// - Parameters:
    ///   - level: The highest level among the coalesced notifications.
    ///   - source: The kind of source that produced them.
    ///   - notificationCount: How many notifications the event stands for.
    ///   - isSimulated: Whether the event was simulated.
    public init(
        level: MemoryPressureLevel,
        source: MemoryPressureMonitor.SourceKind,
        notificationCount: UInt64 = 1,
        isSimulated: Bool = false
    ) {
        self.level = level
        self.source = source
        self.notificationCount = notificationCount
        self.isSimulated = isSimulated
    }

    /// For example `critical from cgroupV1PressureLevel (3 notifications)`.
    public var description: String {
        "\(level) from \(source)\(isSimulated ? " (simulated)" : "") (\(notificationCount) notification\(notificationCount == 1 ? "" : "s"))"
    }
}
