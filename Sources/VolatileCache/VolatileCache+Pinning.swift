extension VolatileCache {
    /// A pin on a cached object's bytes for longer holds than a closure: while it lives the
    /// entry stays hot and its pages cannot be dropped. Ending it (deinit) releases the pin;
    /// if the entry was removed or evicted meanwhile, that frees its memory.
    ///
    /// `~Copyable`: one owner, released exactly once.
    public struct PinnedValue: ~Copyable, @unchecked Sendable {  // Holds one atomic pin count; the bytes are read-only.
        let cache: VolatileCache<Key>
        let hold: Hold<Key>

        init(cache: VolatileCache<Key>, hold: Hold<Key>) {
            self.cache = cache
            self.hold = hold
        }

        /// The key of the object.
        public var key: Key { hold.entry.key }
        /// The object's size in bytes.
        public var byteCount: Int { hold.byteCount }

        /// Calls `body` with the object's bytes.
        /// - Parameter body: Reads the bytes. Do not escape the pointer.
        /// - Returns: What `body` returns.
        /// - Throws: What `body` throws.
        public func withUnsafeBytes<Result: ~Copyable, Failure: Error>(
            _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
        ) throws(Failure) -> Result {
            try body(UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount))
        }

        // Ending the pin may free a removed entry's memory, or demote entries if the hot set
        // is over budget, on this thread.
        deinit {
            cache.release(hold)
        }
    }

    /// Pins the object's bytes, regenerating them first on a miss or a drop.
    /// - Parameters:
    ///   - key: The key.
    ///   - regenerate: As in ``withBytes(forKey:regenerate:_:)``.
    /// - Returns: The pin; the bytes stay pinned until it is dropped.
    /// - Throws: As ``withBytes(forKey:regenerate:_:)``.
    // Disfavored: in async code the async overload wins even for a regenerator without
    // `await` (which would otherwise pick this one and block the thread on a waiter).
    @_disfavoredOverload
    @available(*, noasync, message: "blocks the thread while another caller regenerates; use the async overload (mark the regenerator async or add an await)")
    public func pinnedValue(
        forKey key: Key, regenerate: (inout RegenerationContext<Key>) throws -> Void
    ) throws -> PinnedValue {
        let hold = try acquire(HashedKey(key), offersRepair: .always, canRegenerate: true, regenerate)!
        return PinnedValue(cache: self, hold: hold)
    }

    /// Pins the object's bytes if the cache holds them, without regenerating.
    /// - Parameter key: The key.
    /// - Returns: The pin, or nil on a miss (or a drop).
    /// - Throws: ``VolatileCacheError/memoryUnavailable(_:)`` if a re-pin fails.
    public func pinnedValue(forKey key: Key) throws -> PinnedValue? {
        guard let hold = try acquire(HashedKey(key), offersRepair: .never, canRegenerate: false, { _ in }) else { return nil }
        return PinnedValue(cache: self, hold: hold)
    }
}
