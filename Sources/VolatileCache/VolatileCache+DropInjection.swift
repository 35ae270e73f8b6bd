// Hooks for the VolatileCacheTesting module's drop injection (package access): real kernel drops
// (MADV_PAGEOUT) of cached entries' volatile pages, as memory pressure would do.
import VolatileMemory

extension VolatileCache {
    /// Drops the given pages of the volatile entries for `keys`, now. Hot, pinned, busy or
    /// missing entries are skipped (their pages are not volatile).
    /// - Parameters:
    ///   - keys: The keys.
    ///   - pages: Page indices to drop; nil for all.
    /// - Returns: The number of entries whose pages were dropped.
    package func dropVolatilePages(forKeys keys: some Sequence<Key>, pages: [Int]? = nil) throws -> Int {
        var dropped = 0
        for key in keys {
            let hashed = HashedKey(key)
            // Find the range under the shard lock, drop outside it: dropping retries with sleeps
            // (up to about 200 ms), which must not block the shard. A re-pin in between keeps
            // its pages (see VolatileArena.dropPages(_:in:)).
            let range = shard(for: hashed).pointee.state.withLock { state -> VolatileArena.VolatileRange? in
                guard let entry = state.entry(for: hashed), entry.phase == .volatile else { return nil }
                return entry.volatile?.range
            }
            guard let range else { continue }
            try arena.dropPages(pages, in: range)
            dropped += 1
        }
        return dropped
    }

    /// The keys of the volatile entries now.
    package var volatileKeys: [Key] {
        shards.indices.flatMap { shards[$0].pointee.state.withLock { $0.volatile.keys } }
    }

    /// The keys of the hot entries now, in each shard's list order (by stamp when placed;
    /// hits since then are not reflected).
    package var hotKeys: [Key] {
        shards.indices.flatMap { shards[$0].pointee.state.withLock { $0.hot.keys } }
    }

    /// The number of callers waiting for the regeneration (or re-pin, or demotion) of `key`
    /// in progress now; 0 when there is none. For tests of single flight.
    package func waiterCount(forKey key: Key) -> Int {
        let hashed = HashedKey(key)
        let flight = shard(for: hashed).pointee.state.withLock { $0.entry(for: hashed)?.flight }
        return flight?.waiterCount ?? 0
    }
}
