// Where the workload keeps its objects. The workload only asks a store for a key's bytes and
// verifies them; how they are kept (a volatile cache, or plain heap arrays) is the store's.

/// A keyed store of the generator's objects.
protocol ObjectStore: Sendable {
    /// Calls `body` with `key`'s bytes, generating (or regenerating) them first when the store
    /// does not hold them intact.
    ///
    /// - Parameters:
    ///   - key: A key of the generator.
    ///   - body: Reads the bytes; do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What the store throws when it cannot provide the object.
    func withObject<Result>(_ key: Int, _ body: (UnsafeRawBufferPointer) -> Result) throws -> Result

    /// The drop-detection mechanism in use (`userfaultfd`, `canary`), or `heap`.
    var strategyName: String { get }

    /// Counters for the progress and final lines.
    func statistics() -> StoreStatistics

    /// Stops background work (pressure monitor, drop injector).
    func stop()
}

/// Counters a store reports.
struct StoreStatistics: Sendable {
    /// Pins that found dropped pages.
    var dropsDetected = 0
    /// Objects generated again after a drop (whole or repaired).
    var regenerations = 0
    /// First generations (misses).
    var generations = 0
    /// Bytes the store holds hot (pinned / ordinary memory).
    var hotBytes = 0
    /// Bytes pinned by readers now (in use by a worker).
    var pinnedBytes = 0
    /// Bytes the store holds volatile.
    var volatileBytes = 0
    /// Extra `name=value` pairs for the STATS line (pressure events, sheds, injected drops).
    var extra: [(String, Int)] = []
}
