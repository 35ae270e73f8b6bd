public import VolatileCache
public import VolatileMemory

/// Drops the volatile pages of a cache's entries now, with `MADV_PAGEOUT`: real kernel drops,
/// as memory pressure would cause, but deterministic. Hot and pinned entries are never
/// affected (their pages are dirty and there is no swap), so content in use stays valid.
///
/// ```swift
/// let injector = CacheDropInjector(cache)
/// cache.shed()                       // make everything volatile
/// try injector.dropAll()             // the kernel takes it all back
/// // the next access regenerates
/// ```
public struct CacheDropInjector<Key: Hashable & Sendable>: Sendable {
    /// The cache whose entries are dropped.
    public let cache: VolatileCache<Key>

    /// Creates an injector for `cache`.
    /// - Parameter cache: The cache.
    public init(_ cache: VolatileCache<Key>) {
        self.cache = cache
    }

    /// Drops every page of every volatile entry (of the cache's arena).
    /// - Returns: The pages asked to be dropped.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks `MADV_PAGEOUT`.
    /// - Complexity: One system call per volatile entry.
    @discardableResult
    public func dropAll() throws(VolatileMemoryError) -> Int {
        try cache.arena.dropAllVolatilePages()
    }

    /// Drops pages of the volatile entries for `keys`; other entries are skipped.
    /// - Parameters:
    ///   - keys: The keys.
    ///   - pages: Page indices to drop in each; nil for all.
    /// - Returns: The number of entries affected.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks `MADV_PAGEOUT`.
    @discardableResult
    public func drop(keys: some Sequence<Key>, pages: [Int]? = nil) throws -> Int {
        try cache.dropVolatilePages(forKeys: keys, pages: pages)
    }

    /// Drops a seeded random fraction of the volatile pages.
    /// - Parameters:
    ///   - fraction: The probability, from 0 to 1, that each volatile page is dropped.
    ///   - seed: Same seed and same entries, same pages.
    /// - Returns: The pages asked to be dropped.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks `MADV_PAGEOUT`.
    /// - Complexity: O(volatile pages).
    @discardableResult
    public func drop(fraction: Double, seed: UInt64) throws(VolatileMemoryError) -> Int {
        try cache.arena.dropVolatilePages(fraction: fraction, seed: seed)
    }

    /// The keys of the entries that are volatile now.
    public var volatileKeys: [Key] { cache.volatileKeys }
}
