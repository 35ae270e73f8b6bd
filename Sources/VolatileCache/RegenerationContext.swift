import VolatileMemory

/// What a regenerator gets: the key, the limits, and the one call that writes the object
/// straight into cache memory.
///
/// A regenerator calls exactly one of ``write(byteCount:cost:_:)`` (the whole object) or
/// ``repair(_:)`` (only the dropped pages, when ``droppedPages`` is not nil), exactly once.
/// Two-step regeneration (read a header, then decode the body) falls out of this: parse the
/// header first, then call `write` with the size it gives and decode the body into the buffer.
///
/// ```swift
/// try cache.withBytes(forKey: url, regenerate: { context in
///     let header = try ImageHeader(parsing: file)
///     try context.write(byteCount: header.pixelByteCount) { pixels in
///         try decoder.decodeBody(of: file, into: pixels)   // returns the bytes written
///     }
/// }) { pixels in draw(pixels) }
/// ```
///
/// Misuse (writing twice, asking for too much, reporting a different size, never writing)
/// fails the regeneration with a ``VolatileCacheError``: nothing is cached and the memory is
/// freed, even if the regenerator catches the error.
public struct RegenerationContext<Key: Hashable & Sendable>: ~Copyable {
    /// The key being regenerated.
    public let key: Key
    /// The largest byte count ``write(byteCount:cost:_:)`` accepts.
    public let maximumByteCount: Int
    /// The page size: ``droppedPages`` are indices of pages of this size.
    public let pageSize: Int
    /// When the object was cached and the kernel dropped some of its pages while it was
    /// volatile: those page indices, ascending. The other pages still hold the old content,
    /// and ``repair(_:)`` can rewrite just the dropped ones. Nil for a miss (or when the
    /// value type does not regenerate partially): write the whole object.
    public let droppedPages: [Int]?

    let arena: VolatileArena
    /// Frees memory by evicting one least recently used, unpinned entry; false if none.
    let reclaim: () -> Bool
    /// The old extent (surviving content, or memory to reuse for an object of the same size).
    var previous: PinnedExtent?
    var result: PinnedExtent?
    var resultCost: Int?
    var writeCount = 0
    var didRepair = false
    /// A misuse that fails the regeneration whatever the regenerator does with the error.
    var violation: VolatileCacheError?
    var allocationError: VolatileCacheError?

    init(
        key: Key, maximumByteCount: Int, arena: VolatileArena, previous: consuming PinnedExtent?,
        droppedPages: [Int]?, reclaim: @escaping () -> Bool
    ) {
        self.key = key
        self.maximumByteCount = maximumByteCount
        self.pageSize = arena.pageSize
        self.arena = arena
        self.previous = previous
        self.droppedPages = droppedPages
        self.reclaim = reclaim
    }

    /// Writes the whole object into fresh cache memory of exactly `byteCount` bytes.
    /// - Parameters:
    ///   - byteCount: The object's size, at most ``maximumByteCount``.
    ///   - cost: The entry's cost for ``VolatileCache/Configuration/totalCostLimit``; nil for
    ///     its byte count. 0 or more; costs above ``VolatileCache/Configuration/maximumCost``
    ///     count as that.
    ///   - body: Fills the buffer (do not escape the pointer) and returns how many bytes it
    ///     wrote, which must be `byteCount`. The buffer may hold stale bytes: write all of it.
    /// - Throws: ``VolatileCacheError/objectTooLarge(requestedBytes:maximumBytes:)``,
    ///   ``VolatileCacheError/invalidByteCount(_:)``, ``VolatileCacheError/regeneratorWroteTwice``,
    ///   ``VolatileCacheError/sizeMismatch(requestedBytes:writtenBytes:)``,
    ///   ``VolatileCacheError/invalidArgument(call:argument:value:reason:)`` for a negative cost,
    ///   ``VolatileCacheError/memoryUnavailable(_:)``, or what `body` throws.
    public mutating func write(
        byteCount: Int, cost: Int? = nil, _ body: (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws {
        writeCount += 1
        guard writeCount == 1 else { throw fail(.regeneratorWroteTwice) }
        guard byteCount > 0 else { throw fail(.invalidByteCount(byteCount)) }
        if let cost, cost < 0 {
            throw fail(.invalidArgument(call: "RegenerationContext.write(byteCount:cost:_:)", argument: "cost", value: cost, reason: costRule))
        }
        guard byteCount <= maximumByteCount else {
            throw fail(.objectTooLarge(requestedBytes: byteCount, maximumBytes: maximumByteCount))
        }
        var extent: PinnedExtent
        if let old = previous.take() {
            if old.byteCount == byteCount {
                extent = old  // Already pinned and populated: no syscall.
            } else {
                _ = consume old
                extent = try allocate(byteCount)
            }
        } else {
            extent = try allocate(byteCount)
        }
        let written = try extent.withUnsafeMutableBytes { buffer in try body(buffer) }
        guard written == byteCount else {
            throw fail(.sizeMismatch(requestedBytes: byteCount, writtenBytes: written))
        }
        result = consume extent
        // Saturated: no sum of costs can overflow (see `Configuration.maximumCost`).
        resultCost = cost.map { min($0, VolatileCache<Key>.Configuration.maximumCost) }
    }

    /// Writes the whole object from existing bytes (a copy; prefer the closure form, which
    /// writes straight into cache memory).
    /// - Parameters:
    ///   - bytes: The object's content.
    ///   - cost: The entry's cost; nil for its byte count.
    /// - Throws: As ``write(byteCount:cost:_:)``.
    public mutating func write(contentsOf bytes: UnsafeRawBufferPointer, cost: Int? = nil) throws {
        try write(byteCount: bytes.count, cost: cost) { buffer in
            buffer.copyMemory(from: bytes)
            return bytes.count
        }
    }

    /// Rewrites only the dropped pages of the surviving content.
    /// - Parameter body: Receives the object's bytes (intact pages hold the old content,
    ///   dropped ones read as zeros) and the dropped page indices; it must rewrite those
    ///   pages. Do not escape the pointer.
    /// - Throws: ``VolatileCacheError/nothingToRepair`` when ``droppedPages`` is nil,
    ///   ``VolatileCacheError/regeneratorWroteTwice``, or what `body` throws.
    public mutating func repair(_ body: (UnsafeMutableRawBufferPointer, _ droppedPages: [Int]) throws -> Void) throws {
        writeCount += 1
        guard writeCount == 1 else { throw fail(.regeneratorWroteTwice) }
        guard let droppedPages, var extent = previous.take() else { throw fail(.nothingToRepair) }
        try extent.withUnsafeMutableBytes { buffer in try body(buffer, droppedPages) }
        result = consume extent
        didRepair = true
    }

    private mutating func fail(_ error: VolatileCacheError) -> VolatileCacheError {
        if violation == nil { violation = error }
        result = nil
        return error
    }

    private mutating func allocate(_ byteCount: Int) throws(VolatileCacheError) -> PinnedExtent {
        while true {
            do {
                // The regenerator writes every byte (documented on `write`): a recycled extent
                // costs one populate instead of a fault and a zeroing per page.
                return try arena.allocate(byteCount: byteCount, zeroFilled: false)
            } catch {
                switch error {
                case .reservationLimitReached, .outOfMemory, .reservationFailed:
                    // Make room from the cache's own least recently used entries first.
                    if reclaim() { continue }
                default: break
                }
                allocationError = .memoryUnavailable(error)
                throw .memoryUnavailable(error)
            }
        }
    }

    /// Ends the regeneration: the pinned result and its cost, or the error that fails it.
    consuming func finish() throws(VolatileCacheError) -> Product {
        if let violation { throw violation }
        guard let extent = result.take() else { throw allocationError ?? .regeneratorProducedNothing }
        return Product(extent: extent, cost: resultCost, repaired: didRepair)
    }
}

/// What a cost argument accepts (for error texts).
let costRule = "costs are 0 or more (nil counts the byte count; large costs saturate)"

/// A regenerator's validated work.
struct Product: ~Copyable {
    var extent: PinnedExtent
    var cost: Int?
    var repaired: Bool
}

/// Frees an extent (ends its lifetime here, explicitly).
func free(_ extent: consuming PinnedExtent) {}

