import Glibc
package import VolatileSystem
import Synchronization

/// Watches the kernel's memory-pressure notifications and calls a handler when pressure rises.
///
/// The monitor owns one background thread that `poll(2)`s the source's descriptors and calls the
/// handler on that thread, outside any lock, one event at a time. Notifications that arrive
/// together are coalesced into one ``MemoryPressureEvent`` with the highest level.
///
/// ```swift
/// let monitor = try MemoryPressureMonitor { event in
///     if event.level >= .medium { cache.shed() }
/// }
/// print(monitor.activeSource)   // for example cgroupV1PressureLevel at /sys/fs/cgroup/memory/...
/// // ...
/// monitor.stop()
/// ```
///
/// Call ``stop()`` when done; `deinit` stops the monitor too. A handler that captures the monitor
/// strongly keeps it alive until ``stop()`` is called.
public final class MemoryPressureMonitor: Sendable {
    /// The source in use and what was registered there.
    public let activeSource: ActiveSource
    /// The sources ``Source/automatic`` tried first and why it passed them over (empty for an
    /// explicit source).
    public let rejectedSources: [RejectedSource]

    private let worker: MonitorWorker
    /// The thread handle until ``stop()`` takes it; `nil` once stopped.
    private let thread: LockedValue<pthread_t?>

    /// Opens `source` and starts the monitor thread.
    ///
    /// - Parameters:
    ///   - source: Where to get notifications; ``Source/automatic`` picks the most specific one
    ///     available to this process.
    ///   - handler: Called on the monitor thread for every (coalesced) event, outside any lock.
    ///     Keep it short; events that arrive meanwhile are coalesced into the next call.
    /// - Throws: ``MemoryPressureMonitorError`` when the source cannot be opened or the thread
    ///   cannot be started.
    public convenience init(
        source: Source = .automatic,
        handler: @escaping @Sendable (MemoryPressureEvent) -> Void
    ) throws(MemoryPressureMonitorError) {
        try self.init(source: source, location: .current(), handler: handler)
    }

    /// Opens `source`, resolving "the process's own cgroup" through `location`.
    package init(
        source: Source,
        location: ControlGroupLocation,
        handler: @escaping @Sendable (MemoryPressureEvent) -> Void
    ) throws(MemoryPressureMonitorError) {
        let (opened, rejected) = try OpenedSource.open(source, location: location)
        let wakeFD: Int32
        switch Syscall.eventfd() {
        case .success(let fd): wakeFD = fd
        case .failure(let error):
            opened.closeAll()
            throw .eventFDFailed(error)
        }
        self.activeSource = opened.active
        self.rejectedSources = rejected
        self.worker = MonitorWorker(source: opened, wakeFD: wakeFD, handler: handler)

        let worker = self.worker
        let handle: pthread_t
        switch startThread({ worker.run() }) {
        case .success(let thread): handle = thread
        case .failure(let error): throw .threadStartFailed(error)
        }
        self.thread = LockedValue(handle)
    }

    deinit {
        stop()
    }

    /// Stops the monitor thread and closes the source's descriptors. Safe to call more than once,
    /// and from the handler (the thread then ends after the handler returns).
    ///
    /// - Complexity: Waits for a handler call in progress to return.
    public func stop() {
        guard let handle = thread.withLock({ handle in
            defer { handle = nil }
            return handle
        }) else { return }
        worker.requestStop()
        if pthread_equal(handle, pthread_self()) != 0 {
            pthread_detach(handle)
        } else {
            pthread_join(handle, nil)
        }
    }

    /// Whether the monitor thread is running (``stop()`` has not been called).
    public var isRunning: Bool {
        thread.withLock { $0 != nil }
    }

    /// How many events the handler has been called with so far.
    public var deliveredEventCount: Int {
        worker.deliveredEventCount.load(ordering: .acquiring)
    }

    /// Delivers a simulated event of `level` through the monitor thread, as a kernel
    /// notification would be (on the same thread, coalesced the same way), with
    /// ``MemoryPressureEvent/isSimulated`` set. Use it in unit tests of code that reacts to pressure.
    ///
    /// - Parameter level: The level to report.
    public func simulate(_ level: MemoryPressureLevel) {
        worker.enqueueSimulated(level)
    }
}

/// State shared by the monitor and its thread. The descriptors are `let`s owned by this object
/// (closed in `deinit`, after both the thread and the monitor have let go); the mutable parts are
/// behind `LockedValue` and `Atomic`.
final class MonitorWorker: Sendable {
    let source: OpenedSource
    let wakeFD: Int32
    let handler: @Sendable (MemoryPressureEvent) -> Void
    let deliveredEventCount = Atomic<Int>(0)
    private let control = LockedValue(Control())

    private struct Control {
        var stopRequested = false
        var simulated: [MemoryPressureLevel] = []
    }

    init(source: OpenedSource, wakeFD: Int32, handler: @escaping @Sendable (MemoryPressureEvent) -> Void) {
        self.source = source
        self.wakeFD = wakeFD
        self.handler = handler
    }

    deinit {
        source.closeAll()
        Syscall.close(wakeFD)
    }

    func requestStop() {
        control.withLock { $0.stopRequested = true }
        Syscall.signalEventFD(wakeFD)
    }

    func enqueueSimulated(_ level: MemoryPressureLevel) {
        control.withLock { $0.simulated.append(level) }
        Syscall.signalEventFD(wakeFD)
    }

    func run() {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        for watch in source.watches {
            fds.append(pollfd(fd: watch.fd, events: Int16(watch.isEventFD ? POLLIN : POLLPRI), revents: 0))
        }
        while true {
            for index in fds.indices { fds[index].revents = 0 }
            if case .failure(let error) = Syscall.poll(&fds, timeoutMilliseconds: -1) {
                preconditionFailure("poll on the monitor's own descriptors failed: \(error)")
            }
            var kernelLevel: MemoryPressureLevel?
            var kernelCount: UInt64 = 0
            for (index, watch) in source.watches.enumerated() {
                let revents = Int32(fds[index + 1].revents)
                if revents == 0 { continue }
                if revents & Int32(POLLERR | POLLNVAL | POLLHUP) != 0 && !watch.isEventFD {
                    // The file went away (for example a removed cgroup): stop polling it
                    // rather than spin on POLLERR; poll ignores negative descriptors.
                    fds[index + 1].fd = -1
                    continue
                }
                let count: UInt64 = watch.isEventFD ? Syscall.drainEventFD(watch.fd) : 1
                if count == 0 { continue }
                kernelCount += count
                kernelLevel = max(kernelLevel ?? watch.level, watch.level)
            }
            if fds[0].revents != 0 { _ = Syscall.drainEventFD(wakeFD) }
            let (stop, simulated) = control.withLock { control in
                defer { control.simulated.removeAll() }
                return (control.stopRequested, control.simulated)
            }
            if stop { return }
            // The handler runs outside the lock.
            if let level = kernelLevel {
                deliver(MemoryPressureEvent(level: level, source: source.active.kind, notificationCount: kernelCount))
            }
            if let level = simulated.max() {
                deliver(MemoryPressureEvent(
                    level: level, source: source.active.kind,
                    notificationCount: UInt64(simulated.count), isSimulated: true))
            }
        }
    }

    private func deliver(_ event: MemoryPressureEvent) {
        handler(event)
        deliveredEventCount.add(1, ordering: .releasing)
    }
}
