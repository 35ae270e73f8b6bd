import CVolatileShim

/// An extent in ordinary memory: readable, writable, and never dropped by the kernel.
///
/// `~Copyable`: exactly one owner. ``unpin()`` consumes it and returns the volatile extent,
/// so unpinning twice, or touching the bytes after unpinning, cannot be written. Dropping
/// the value frees the extent (its pages go back to the kernel, or it is kept volatile for
/// reuse under ``VolatileArena/Configuration/recycledByteLimit``).
public struct PinnedExtent: ~Copyable, @unchecked Sendable {  // Owns its range exclusively.
    let ownership: ExtentOwnership
    /// What the pin that produced this value found.
    public let report: PinReport

    init(token: ExtentToken, report: PinReport) {
        ownership = ExtentOwnership(token: token, accounting: .pinned)
        self.report = report
    }

    var token: ExtentToken { ownership.token }

    /// The bytes requested at allocation.
    public var byteCount: Int { token.byteCount }
    /// The pages the extent covers.
    public var pageCount: Int { token.pageCount }
    /// The page size of the arena.
    public var pageSize: Int { token.arena.takeUnretainedValue().pageSize }

    /// The first byte. For the cache layer, which shares a pinned extent between readers
    /// under its own pin counts; everyone else uses the `with...` methods.
    package var baseAddress: UnsafeMutableRawPointer { token.base }

    /// Calls `body` with the extent's bytes, read-only.
    /// - Parameter body: Receives the bytes. Do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withUnsafeBytes<Result: ~Copyable, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: token.base, count: token.byteCount))
    }

    /// Calls `body` with the extent's bytes, writable.
    /// - Parameter body: Receives the bytes. Do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public mutating func withUnsafeMutableBytes<Result: ~Copyable, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeMutableRawBufferPointer(start: token.base, count: token.byteCount))
    }

    /// Makes the extent volatile: the kernel may drop its pages under memory pressure.
    ///
    /// With userfaultfd this is one `MADV_FREE`. With canaries, each page's first word is
    /// saved in a side table and replaced by the arena's cookie first.
    /// If the kernel refuses `MADV_FREE` (e.g. the range was mlock'ed by the caller), the
    /// pages simply stay resident: the next pin finds them intact. The refusal is counted in
    /// ``VolatileArena/Statistics/unpinFailures``.
    /// - Returns: The volatile extent.
    /// - Complexity: O(pages) for canaries; one system call for userfaultfd.
    public consuming func unpin() -> VolatileExtent {
        token.arena.takeUnretainedValue().unpin(token)
        return VolatileExtent(token: ownership.surrender(), discarded: false)
    }

    /// Pages currently resident (all of them, for a pinned extent, unless the caller
    /// released some with its own madvise).
    /// - Returns: The resident page count, from mincore; 0 if mincore fails.
    /// - Complexity: O(pages).
    public func residentPageCount() -> Int { ownership.residentPageCount() }

    /// Gives up ownership without freeing: the caller frees the token (bulk release of slab
    /// pages, `VolatileArena+BulkRelease.swift`).
    consuming func surrender() -> ExtentToken { ownership.surrender() }
}
