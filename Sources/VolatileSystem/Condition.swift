#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A condition variable that waits on a ``Lock`` (a `pthread_cond_t` on the monotonic clock).
///
/// The package's one wait primitive: single flight's sync waiters and the background threads'
/// interruptible sleeps use it. Waits may wake spuriously: always re-check the predicate.
package final class Condition: @unchecked Sendable {  // The pthread condition is the synchronisation.
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    /// Creates a condition variable whose timed waits use `CLOCK_MONOTONIC`.
    package init() {
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        defer { pthread_condattr_destroy(&attributes) }
        // Timed waits measure a duration: wall-clock jumps must not stretch or cut them.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Releases `lock`, sleeps until signalled, and takes `lock` again. The caller holds `lock`.
    package func wait(releasing lock: Lock) {
        let status = pthread_cond_wait(condition, lock.mutex)
        assert(status == 0, "pthread_cond_wait failed: \(status)")
    }

    /// Like ``wait(releasing:)``, but wakes by itself after `timeout`.
    /// - Returns: `false` when the timeout passed without a signal.
    @discardableResult
    package func wait(releasing lock: Lock, timeout: Duration) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = timeout.components
        let totalNanoseconds = Int64(now.tv_nsec) + max(0, attoseconds / 1_000_000_000)
        var deadline = timespec(
            tv_sec: now.tv_sec + Int(max(0, seconds)) + Int(totalNanoseconds / 1_000_000_000),
            tv_nsec: Int(totalNanoseconds % 1_000_000_000)
        )
        return pthread_cond_timedwait(condition, lock.mutex, &deadline) != ETIMEDOUT
    }

    /// Wakes one waiter.
    package func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiter.
    package func broadcast() { pthread_cond_broadcast(condition) }
}
