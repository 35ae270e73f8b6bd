// Pressure shedding: a MemoryPressureMonitor calls `shed()` on its own thread when the kernel
// reports pressure at or above the configured level. Shedding demotes the hot set entry by
// entry, taking each shard lock only briefly, so hits on other entries are never blocked.
extension VolatileCache {
    /// Starts a monitor that sheds the hot set when memory pressure reaches
    /// ``Configuration/pressureLevelToShed``. Replaces (and stops) a running one.
    /// - Parameter source: Where the notifications come from (PSI, cgroup v2 or v1).
    /// - Returns: The monitor (for its ``MemoryPressureMonitor/activeSource``, or to
    ///   ``MemoryPressureMonitor/simulate(_:)`` events in tests).
    /// - Throws: ``MemoryPressureMonitorError`` when no source can be opened.
    @discardableResult
    public func startPressureMonitoring(
        source: MemoryPressureMonitor.Source = .automatic
    ) throws(MemoryPressureMonitorError) -> MemoryPressureMonitor {
        let new = try MemoryPressureMonitor(source: source) { [weak self] event in
            self?.handleMemoryPressure(event)
        }
        // One swap, so two concurrent starts cannot both keep running; the old monitor is
        // stopped (a thread join) after the lock.
        let old = monitor.withLock { current in
            defer { current = new }
            return current.take()
        }
        old?.stop()
        return new
    }

    /// Stops the pressure monitor, if one is running.
    public func stopPressureMonitoring() {
        monitor.withLock { $0.take() }?.stop()
    }

    /// The running pressure monitor, if any.
    public var pressureMonitor: MemoryPressureMonitor? {
        monitor.withLock { $0 }
    }

    /// Reacts to a memory-pressure event: first makes volatile the swappable entries that swap
    /// cannot absorb (all of them at ``MemoryPressureLevel/critical`` or without usable swap;
    /// see ``Volatility``), then sheds the hot set if the event's level is at least
    /// ``Configuration/pressureLevelToShed``. For applications that run their own monitor.
    /// - Parameter event: The event.
    public func handleMemoryPressure(_ event: MemoryPressureEvent) {
        makeSwappableVolatile(onPressure: event.level)
        guard event.level >= configuration.pressureLevelToShed else { return }
        shed()
    }
}
