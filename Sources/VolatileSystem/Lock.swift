#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A mutual-exclusion lock that ThreadSanitizer can see.
///
/// The standard library's `Mutex` on Linux is built on futexes that ThreadSanitizer does not
/// model, so every `Mutex.withLock` pair shows up as a data race and the tool finds nothing
/// real. `Lock` is a heap-allocated `pthread_mutex_t` (as swift-nio's `NIOLock`): the sanitizer
/// intercepts `pthread_mutex_lock`/`unlock`, and the uncontended cost is the same order as
/// `Mutex` (measured by `volatile-bench`). Use it for every lock of the package; hot read paths
/// should take no lock at all.
///
/// `Lock` is a class so that its address is stable and a ``Condition`` can wait on it.
package final class Lock: @unchecked Sendable {  // The pthread mutex is the synchronisation.
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Creates an unlocked lock.
    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        // Error checking costs nothing measurable and turns a double unlock or an unlock from
        // the wrong thread (a bug of ours) into a trap instead of undefined behaviour.
        #if DEBUG
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK))
        #endif
        let status = pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Acquires the lock, blocking until it is free.
    package func lock() {
        let status = pthread_mutex_lock(mutex)
        assert(status == 0, "pthread_mutex_lock failed: \(status)")
    }

    /// Acquires the lock if it is free.
    /// - Returns: Whether the lock is now held by the caller.
    package func tryLock() -> Bool {
        pthread_mutex_trylock(mutex) == 0
    }

    /// Releases the lock; the caller must hold it.
    package func unlock() {
        let status = pthread_mutex_unlock(mutex)
        assert(status == 0, "pthread_mutex_unlock failed: \(status)")
    }

    /// Runs `body` with the lock held.
    package func withLock<Result: ~Copyable, E: Error>(
        _ body: () throws(E) -> Result
    ) throws(E) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A value guarded by a ``Lock``: the TSan-visible replacement for `Mutex<Value>`.
///
/// The signature of ``withLock(_:)`` is `Mutex`'s, so code moves over unchanged.
package final class LockedValue<Value: ~Copyable>: @unchecked Sendable {  // `value` is only touched under `lock`.
    /// The lock; exposed so a ``Condition`` can wait on it.
    package let lock = Lock()
    var value: Value

    /// Creates a guarded value.
    package init(_ initialValue: consuming sending Value) {
        value = initialValue
    }

    /// Runs `body` with exclusive access to the value.
    package func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// Runs `body` with the value if the lock is free now, without waiting.
    /// - Returns: `body`'s result, or `nil` when another thread holds the lock.
    package func withLockIfAvailable<Result, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        guard lock.tryLock() else { return nil }
        defer { lock.unlock() }
        return try body(&value)
    }
}
