#if canImport(Glibc)
package import Glibc
#elseif canImport(Musl)
package import Musl
#endif

/// Starts a joinable POSIX thread running `body`. The package's background threads (the
/// userfaultfd handler, the pressure monitor, the sandbox supervisor, drop injectors) are
/// plain pthreads rather than Foundation threads: they block in `poll` for their whole life
/// and must be joinable from a deinit.
/// - Parameter body: What the thread runs; it is released when the thread ends.
/// - Returns: The thread, or the error of `pthread_create` (EAGAIN at a thread or pids limit).
package func startThread(_ body: @escaping @Sendable () -> Void) -> Result<pthread_t, Errno> {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let status = pthread_create(&thread, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard status == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return .failure(Errno(rawValue: status))
    }
    return .success(thread)
}
