/// What the access loop asks of a cache: get an item's decoded bytes (decoding on a miss) and
/// read them; and the figures for the progress line and the table.
protocol GalleryCache: AnyObject {
    /// Which cache this is.
    var kind: CacheKind { get }
    /// One line on how it is configured, for the table.
    var configurationNote: String { get }

    /// Gets `item`'s decoded bytes, decoding them on a miss, and returns their sampled checksum
    /// (nil when the bytes are not `item`'s).
    /// - Parameter item: The item.
    /// - Returns: ``DecodedImage/sampledChecksum(_:for:)`` of the bytes.
    /// - Throws: A decode error, or the cache's error.
    func access(_ item: GalleryItem) throws -> UInt64?

    /// The figures now.
    func figures() -> CacheFigures
}

/// Counters every backend reports in the same terms.
struct CacheFigures: Sendable, Equatable {
    /// Accesses served from the cache without decoding.
    var hits = 0
    /// Decodes run (misses, and accesses whose cached bytes had been dropped).
    var regenerations = 0
    /// Cached objects found dropped by the kernel (volatile cache only).
    var drops = 0
    /// Objects the cache itself threw out (cost limit, or to make room).
    var evictions = 0
    /// Bytes of decoded images the cache holds in memory now, by its own account.
    var residentBytes = 0
}
