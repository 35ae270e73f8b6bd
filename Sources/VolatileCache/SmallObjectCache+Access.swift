public import Synchronization
public import VolatileMemory

extension SmallObjectCache {
    /// Calls `body` with the object's bytes if the cache holds them, without regenerating.
    ///
    /// On a volatile page the page is re-pinned first (one system call for all its objects).
    /// If the kernel dropped it, the entry is removed and this is a miss.
    /// - Parameters:
    ///   - key: The key.
    ///   - body: Reads the bytes; they stay pinned until it returns. Do not escape the pointer.
    /// - Returns: What `body` returns, or nil on a miss.
    /// - Throws: What `body` throws, or ``VolatileCacheError/memoryUnavailable(_:)`` if the
    ///   page cannot be re-pinned (the entry is then removed).
    @inlinable
    public func withBytes<Result>(forKey key: Key, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result? {
        if let result = try withHotBytes(key, body) { return result }
        guard let (page, bytes) = try beginRead(key) else { return nil }
        defer { page.readers.subtract(1, ordering: .releasing) }
        return try body(bytes)
    }

    /// The hit on a pinned page, inlined into the caller (specialized for its key type):
    /// objects up to ``hotCopyLimit`` bytes are copied out under the shard lock, larger ones
    /// read in place with a reader counted on their page. Nil when the key is not on a pinned page.
    @inlinable @inline(__always)
    func withHotBytes<Result>(_ key: Key, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result? {
        let shard = shard(for: key)
        return try withUnsafeTemporaryAllocation(byteCount: Self.hotCopyLimit, alignment: 16) { scratch -> Result? in
            switch shard.withLock({ $0.hotRead(key, copyInto: scratch.baseAddress!, capacity: Self.hotCopyLimit) }) {
            case .copied(let count):
                return .some(try body(UnsafeRawBufferPointer(start: scratch.baseAddress, count: count)))
            case .counted(let page, let bytes):
                defer { page.readers.subtract(1, ordering: .releasing) }
                return .some(try body(bytes))
            case .notHot:
                return nil
            }
        }
    }

    /// Objects up to this size are copied out of their page on a hot hit (16-byte vector
    /// moves); larger ones are read in place with a reader counted on their page, which costs
    /// two atomic operations on the page object and a cache miss to reach it. Measured with
    /// 256-byte objects: 1.4x the dictionary lookup copied, about 2x counted.
    @inlinable static var hotCopyLimit: Int { 256 }

    /// Calls `body` with the object's bytes, regenerating them first on a miss or when the
    /// kernel dropped the object's page.
    /// - Parameters:
    ///   - key: The key.
    ///   - regenerate: Makes the object's bytes (1 to ``maximumObjectByteCount``). Runs with no
    ///     cache lock held; concurrent misses on one key may each run it.
    ///   - body: Reads the bytes; they stay valid until it returns. Do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `regenerate` or `body` throws, or a ``VolatileCacheError`` (then nothing
    ///   is cached).
    @inlinable
    public func withBytes<Result>(
        forKey key: Key, regenerate: () throws -> [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        if let result = try withHotBytes(key, body) { return result }
        if let (page, bytes) = try beginRead(key) {
            defer { page.readers.subtract(1, ordering: .releasing) }
            return try body(bytes)
        }
        let bytes = try regenerate()
        try storeRegenerated(bytes, forKey: key)
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// The object's bytes, copied out, or nil on a miss (no regeneration).
    /// - Parameter key: The key.
    /// - Returns: A copy of the bytes, or nil.
    /// - Throws: As ``withBytes(forKey:_:)``.
    /// - Complexity: O(byte count).
    public func bytes(forKey key: Key) throws -> [UInt8]? {
        try withBytes(forKey: key) { Array($0) }
    }

    /// Caches what a regenerator made, and counts the regeneration.
    @usableFromInline
    func storeRegenerated(_ bytes: [UInt8], forKey key: Key) throws {
        try insert(bytes, forKey: key)
        shard(for: key).withLock { $0.figures.regenerations += 1 }
    }

    /// The look-up shared by the access paths: the page (with one reader counted) and the bytes.
    @usableFromInline
    func beginRead(_ key: Key) throws -> (SlabPage, UnsafeRawBufferPointer)? {
        var garbage: [SlabPage] = []
        defer { if !garbage.isEmpty { release(garbage) } }
        let (limit, regroup, arena) = (hotPagesPerShard, regroupsByRecency, arena)
        return try shard(for: key).withLock { state throws(VolatileCacheError) in
            let (pinsBefore, movesBefore) = (state.figures.pagePins, state.figures.relocatedObjects)
            let found = try state.beginRead(key, regroup: regroup, arena: arena, garbage: &garbage)
            // A pin, or a move (which may have taken a new page), can put the shard over its budget.
            if state.figures.pagePins != pinsBefore || state.figures.relocatedObjects != movesBefore {
                state.enforceHotBudget(limit, regroup: regroup, garbage: &garbage)
            }
            return found
        }
    }
}
