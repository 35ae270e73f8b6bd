public import Hummingbird
import Synchronization

/// Where a server's thumbnails come from: one cache (or none) in front of the decoder.
///
/// Every provider hands out the same bytes for a key (a BMP, see ``Thumbnail``); they differ in
/// where those bytes live between requests and what a miss costs.
public protocol ThumbnailProvider: Sendable {
    /// Which cache this is.
    var mode: CacheMode { get }
    /// One line on how it is configured, for the start-up log and `/stats`.
    var configurationNote: String { get }

    /// Calls `body` with the thumbnail's bytes (the whole BMP), decoding it first if needed.
    /// - Parameters:
    ///   - key: The thumbnail; its photo index must be valid.
    ///   - body: Reads the bytes. Do not escape the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: A decode error, the cache's error, ``ThumbnailError``, or what `body` throws.
    func withThumbnail<Result>(_ key: ThumbnailKey, _ body: (UnsafeRawBufferPointer) throws -> Result) async throws -> Result

    /// Makes sure the thumbnail exists (decoding it if needed) and returns a way to copy its
    /// bytes out piece by piece, so a large response streams in chunks instead of being copied
    /// whole first.
    /// - Parameter key: The thumbnail; its photo index must be valid.
    /// - Returns: The source.
    /// - Throws: As ``withThumbnail(_:_:)``.
    func source(for key: ThumbnailKey) async throws -> any ThumbnailSource

    /// The cache's figures now.
    func cacheFigures() -> CacheFigures
}

/// One thumbnail being sent: its size, and its bytes a range at a time.
public protocol ThumbnailSource: Sendable {
    /// The thumbnail's byte count.
    var byteCount: Int { get }
    /// The first ``Thumbnail/chunkByteCount`` bytes (all of a small thumbnail), copied when the
    /// source was made: a small response costs one look-up.
    var firstChunk: ByteBuffer { get }

    /// Copies `range` of the thumbnail's bytes into a new buffer.
    /// - Parameter range: Within `0..<byteCount`.
    /// - Returns: The bytes.
    /// - Throws: When the bytes had to be decoded again and that failed.
    func copy(_ range: Range<Int>) async throws -> ByteBuffer
}

/// A source over bytes this request holds a reference to (an NSCache object, a decode buffer,
/// a preloaded array): eviction from a cache does not free them while the response is sent.
struct RetainedSource<Owner: Sendable>: ThumbnailSource {
    let owner: Owner
    let byteCount: Int
    let firstChunk: ByteBuffer
    let bytes: @Sendable (Owner, Range<Int>) -> ByteBuffer

    init(owner: Owner, byteCount: Int, bytes: @escaping @Sendable (Owner, Range<Int>) -> ByteBuffer) {
        self.owner = owner
        self.byteCount = byteCount
        self.bytes = bytes
        firstChunk = bytes(owner, 0..<min(byteCount, Thumbnail.chunkByteCount))
    }

    func copy(_ range: Range<Int>) async throws -> ByteBuffer {
        bytes(owner, range)
    }
}

/// A request the provider cannot serve.
public enum ThumbnailError: Error, Equatable, CustomStringConvertible {
    /// The `preloaded` provider holds only the sizes it was started with.
    case notPreloaded(ThumbnailKey)

    /// A short message for the response body.
    public var description: String {
        switch self {
        case .notPreloaded(let key): "\(key) was not preloaded (see --preload-sizes)"
        }
    }
}

/// A cache's figures in the same terms for every provider (fields a cache does not have are nil).
public struct CacheFigures: Sendable, Equatable, Codable {
    /// Requests served from the cache without decoding.
    public var hits: Int
    /// Requests that found nothing and decoded (or waited for another request's decode).
    public var misses: Int
    /// Cached thumbnails the kernel had dropped pages of (volatile cache only).
    public var drops: Int?
    /// Thumbnails the cache threw out (cost limit, or to make memory).
    public var evictions: Int
    /// Thumbnails in the cache.
    public var entries: Int?
    /// Bytes of thumbnails the cache holds, by its own account (hot and volatile, resident or not).
    public var cachedBytes: Int
    /// Volatile cache: bytes of hot (non-volatile) entries.
    public var hotBytes: Int?
    /// Volatile cache: bytes of volatile entries, resident or not.
    public var volatileBytes: Int?
    /// Volatile cache: bytes of volatile entries still resident (mincore).
    public var residentVolatileBytes: Int?

    /// Creates figures.
    public init(
        hits: Int, misses: Int, drops: Int? = nil, evictions: Int, entries: Int? = nil, cachedBytes: Int,
        hotBytes: Int? = nil, volatileBytes: Int? = nil, residentVolatileBytes: Int? = nil
    ) {
        self.hits = hits
        self.misses = misses
        self.drops = drops
        self.evictions = evictions
        self.entries = entries
        self.cachedBytes = cachedBytes
        self.hotBytes = hotBytes
        self.volatileBytes = volatileBytes
        self.residentVolatileBytes = residentVolatileBytes
    }

    enum CodingKeys: String, CodingKey {
        case hits, misses, drops, evictions, entries
        case cachedBytes = "cached_bytes"
        case hotBytes = "hot_bytes"
        case volatileBytes = "volatile_bytes"
        case residentVolatileBytes = "resident_volatile_bytes"
    }
}

/// Counts every decode, whichever provider ran it, and the time it took.
public final class DecodeCounters: Sendable {
    private let count = Atomic<Int>(0)
    private let nanoseconds = Atomic<Int>(0)

    /// Creates zeroed counters.
    public init() {}

    /// Decodes so far.
    public var decodes: Int { count.load(ordering: .relaxed) }
    /// Seconds spent decoding so far, on all threads.
    public var seconds: Double { Double(nanoseconds.load(ordering: .relaxed)) * 1e-9 }

    /// Runs `decode` and counts it.
    /// - Parameter decode: The decode.
    /// - Returns: What it returns.
    /// - Throws: What it throws (a failed decode is counted too).
    func measure<Result>(_ decode: () throws -> Result) rethrows -> Result {
        let start = ContinuousClock.now
        defer {
            let elapsed = start.duration(to: .now).components
            nanoseconds.add(Int(elapsed.seconds) * 1_000_000_000 + Int(elapsed.attoseconds / 1_000_000_000), ordering: .relaxed)
            count.add(1, ordering: .relaxed)
        }
        return try decode()
    }
}
