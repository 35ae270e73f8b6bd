import Hummingbird
import VolatileCache

/// A thumbnail in the volatile cache, sent a chunk at a time: each chunk is a cache hit that pins
/// the object only while the chunk is copied, so no response holds a whole copy, and between
/// chunks the kernel may still take the pages. If it does, the next chunk decodes the thumbnail
/// again; the decoder is deterministic, so the bytes are the same.
struct VolatileSource: ThumbnailSource {
    let provider: VolatileThumbnails
    let key: ThumbnailKey
    let byteCount: Int
    let firstChunk: ByteBuffer

    func copy(_ range: Range<Int>) async throws -> ByteBuffer {
        try await provider.withThumbnail(key) { bytes in
            ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
        }
    }
}

/// Thumbnails in `VolatileCache`, through its async API: the decoder writes each BMP straight
/// into cache memory, concurrent misses on one key decode once (the others wait), and thumbnails
/// beyond the hot set are volatile: the kernel may take their pages when the memory limit is
/// near, and the next request decodes again.
final class VolatileThumbnails: ThumbnailProvider {
    let mode = CacheMode.volatile
    let configurationNote: String
    private let cache: VolatileCache<ThumbnailKey>
    private let photos: PhotoStore
    private let decodes: DecodeCounters

    /// - Parameters:
    ///   - photos: The photos.
    ///   - hotMiB: The hot-set budget; nil keeps the cache's default.
    ///   - decodes: Where decodes are counted.
    /// - Throws: The cache's error when it cannot create its arena.
    init(photos: PhotoStore, hotMiB: Int?, decodes: DecodeCounters) throws {
        var configuration = VolatileCache<ThumbnailKey>.Configuration()
        if let hotMiB { configuration.hotByteLimit = hotMiB << 20 }
        // Thumbnails are at most 16 MiB; a bound turns a bug into an error, not a huge extent.
        configuration.maximumObjectByteCount = Thumbnail.byteCount(width: Thumbnail.maximumEdge, height: Thumbnail.maximumEdge)
        cache = try VolatileCache(configuration: configuration)
        self.photos = photos
        self.decodes = decodes
        configurationNote = "VolatileCache, hot set \(configuration.hotByteLimit >> 20) MiB, no cost limit (the kernel decides), "
            + "drop detection \(cache.arena.detection)"
    }

    func withThumbnail<Result>(_ key: ThumbnailKey, _ body: (UnsafeRawBufferPointer) throws -> Result) async throws -> Result {
        let decoder = photos.photos[key.photo].decoder
        let decodes = self.decodes
        return try await cache.withBytes(forKey: key, regenerate: { context in
            // Size first (it follows from the key), then the decoder writes into cache memory.
            // After a drop the whole thumbnail is decoded again: a decode inflates the whole PNG
            // anyway, so rewriting only the dropped pages would save little.
            try context.write(byteCount: Thumbnail.byteCount(width: key.width, height: key.height)) { buffer in
                try decodes.measure { try Thumbnail.write(key, decoder: decoder, into: buffer) }
            }
        }, body)
    }

    func source(for key: ThumbnailKey) async throws -> any ThumbnailSource {
        // One look-up gives the size and the first chunk (all of a small thumbnail).
        let (byteCount, first) = try await withThumbnail(key) { bytes in
            (bytes.count, ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes.prefix(Thumbnail.chunkByteCount))))
        }
        return VolatileSource(provider: self, key: key, byteCount: byteCount, firstChunk: first)
    }

    func cacheFigures() -> CacheFigures {
        let statistics = cache.statistics
        return CacheFigures(
            hits: statistics.hits, misses: statistics.misses, drops: statistics.droppedObjects,
            evictions: statistics.evictions, entries: statistics.entryCount,
            cachedBytes: statistics.hotBytes + statistics.volatileBytes, hotBytes: statistics.hotBytes,
            volatileBytes: statistics.volatileBytes, residentVolatileBytes: cache.residentVolatileBytes())
    }
}
