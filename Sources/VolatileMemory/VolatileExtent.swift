import CVolatileShim

/// An extent whose memory the kernel may take back at any time (`MADV_FREE`).
///
/// It offers no access to its bytes: reading volatile memory would be a race with reclaim
/// (and a read does not even cancel the lazy free). To use the content, ``pin(discardingContent:)`` it.
/// Dropping the value frees the extent: its pages go back to the kernel, or it is kept,
/// still volatile, for reuse (see ``VolatileArena/Configuration/recycledByteLimit``).
public struct VolatileExtent: ~Copyable, @unchecked Sendable {  // Owns its range exclusively.
    let ownership: ExtentOwnership

    init(token: ExtentToken, discarded: Bool) {
        ownership = ExtentOwnership(token: token, accounting: discarded ? .discarded : .volatile)
    }

    var token: ExtentToken { ownership.token }
    /// True when the content is known to be gone (a failed pin discarded it): the next pin
    /// prepares fresh pages instead of detecting.
    var isDiscarded: Bool { ownership.accounting == .discarded }

    /// The bytes requested at allocation.
    public var byteCount: Int { token.byteCount }
    /// The pages the extent covers.
    public var pageCount: Int { token.pageCount }

    /// Makes the extent ordinary memory again and reports, page by page, what the kernel
    /// dropped while it was volatile.
    ///
    /// With userfaultfd, one `MADV_POPULATE_WRITE` re-dirties the range; a page that was
    /// dropped has no page-table entry, so the same call raises a missing fault for it
    /// (or EFAULT in user-mode-only mode), which records the page: no page can be dropped
    /// between the check and the re-dirtying because they are the same step. With canaries,
    /// a compare-and-swap of each page's cookie both detects (a dropped page reads zero)
    /// and re-dirties (a successful swap is a write).
    ///
    /// With the residency pre-check (``VolatileArena/Configuration/usesResidencyPrecheck``),
    /// pages mincore already shows absent are recorded and mapped in one batch first.
    /// A pin of a discarded extent (after a failed pin) reports ``PinReport/fresh``.
    ///
    /// - Parameter discardingContent: Skip detection and start fresh (``PinReport/fresh``,
    ///   zero-filled). Use it when the content will be regenerated whole anyway, e.g. after
    ///   ``residentPageCount()`` said that nothing is left: the pin then costs no fault at all.
    /// - Returns: ``PinOutcome/pinned(_:)`` with the report in ``PinnedExtent/report``, or
    ///   ``PinOutcome/failed(_:_:)`` with the extent back, discarded, and the error
    ///   (``VolatileMemoryError/outOfMemory`` when the kernel could not provide the pages,
    ///   ``VolatileMemoryError/systemCall(_:_:)`` for any other refusal).
    /// - Complexity: O(pages): one populate call or one atomic operation per page.
    public consuming func pin(discardingContent: Bool = false) -> PinOutcome {
        let arena = token.arena.takeUnretainedValue()
        let result = arena.repin(token, discarded: isDiscarded, discardingContent: discardingContent)
        let token = ownership.surrender()
        switch result {
        case .success(let report):
            return .pinned(PinnedExtent(token: token, report: report))
        case .failure(let error):
            return .failed(VolatileExtent(token: token, discarded: true), error)
        }
    }

    /// Pages currently resident, from mincore. A snapshot only: the kernel may drop more
    /// right after (never use it to decide that content is intact; ``pin(discardingContent:)`` decides).
    /// - Returns: The resident page count; 0 in the unlikely case that mincore fails.
    /// - Complexity: O(pages), about 0.35 µs per MiB.
    public func residentPageCount() -> Int { ownership.residentPageCount() }

    /// Gives up ownership without freeing: the caller frees the token (bulk release of slab
    /// pages, `VolatileArena+BulkRelease.swift`).
    consuming func surrender() -> ExtentToken { ownership.surrender() }
}

/// The result of ``VolatileExtent/pin(discardingContent:)``.
public enum PinOutcome: ~Copyable, Sendable {
    /// The extent is pinned; its ``PinnedExtent/report`` says what was dropped.
    case pinned(PinnedExtent)
    /// Pinning failed; the extent is back, discarded (its next pin starts fresh).
    case failed(VolatileExtent, VolatileMemoryError)

    /// The pinned extent, or the error (the discarded extent is then freed).
    /// - Returns: The pinned extent.
    /// - Throws: The error of a failed pin.
    public consuming func get() throws(VolatileMemoryError) -> PinnedExtent {
        switch consume self {
        case .pinned(let extent): return extent
        case .failed(_, let error): throw error
        }
    }
}
