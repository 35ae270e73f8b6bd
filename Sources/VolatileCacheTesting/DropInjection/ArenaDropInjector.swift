public import VolatileMemory

/// Drops volatile pages of a `VolatileArena` now, with `MADV_PAGEOUT` (Linux
/// 5.4): real kernel drops, as memory pressure would cause, but deterministic. Pinned pages
/// are never affected (they are dirty and there is no swap).
///
/// For tests of code built on the memory layer alone; a cache's drops go through
/// ``CacheDropInjector``.
///
/// ```swift
/// let idle = pinned.unpin()
/// try ArenaDropInjector.drop(pages: [3], of: idle)   // page 3 is gone; the next pin reports it
/// ```
public enum ArenaDropInjector {
    /// Drops every resident page of every volatile extent of `arena`.
    /// - Parameter arena: The arena.
    /// - Returns: The number of pages asked to be dropped.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks
    ///   `MADV_PAGEOUT`.
    /// - Complexity: One system call per volatile extent.
    @discardableResult
    public static func dropAll(in arena: VolatileArena) throws(VolatileMemoryError) -> Int {
        try arena.dropAllVolatilePages()
    }

    /// Drops a seeded random fraction of the volatile pages of `arena`.
    /// - Parameters:
    ///   - fraction: The probability, from 0 to 1, that each volatile page is dropped.
    ///   - seed: Seed of the page choice (same seed and same extents, same pages).
    ///   - arena: The arena.
    /// - Returns: The number of pages asked to be dropped.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks
    ///   `MADV_PAGEOUT`.
    /// - Complexity: O(volatile pages).
    @discardableResult
    public static func drop(fraction: Double, seed: UInt64, in arena: VolatileArena) throws(VolatileMemoryError) -> Int {
        try arena.dropVolatilePages(fraction: fraction, seed: seed)
    }

    /// Drops pages of one volatile extent, retrying until the kernel has taken them.
    /// - Parameters:
    ///   - pages: Page indices within the extent; nil for all.
    ///   - extent: The volatile extent.
    /// - Returns: How many of the requested pages are gone.
    /// - Throws: `VolatileMemoryError.systemCall(_:_:)` if the kernel lacks
    ///   `MADV_PAGEOUT`.
    @discardableResult
    public static func drop(pages: [Int]? = nil, of extent: borrowing VolatileExtent) throws(VolatileMemoryError) -> Int {
        try extent.dropPages(pages)
    }
}
