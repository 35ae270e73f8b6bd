import Hummingbird
import Synchronization

/// The baseline without a cache: every request decodes into a buffer of its own.
final class UncachedThumbnails: ThumbnailProvider {
    let mode = CacheMode.none
    let configurationNote = "no cache: every request decodes"
    private let photos: PhotoStore
    private let decodes: DecodeCounters

    init(photos: PhotoStore, decodes: DecodeCounters) {
        self.photos = photos
        self.decodes = decodes
    }

    func withThumbnail<Result>(_ key: ThumbnailKey, _ body: (UnsafeRawBufferPointer) throws -> Result) async throws -> Result {
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Thumbnail.byteCount(width: key.width, height: key.height), alignment: 16)
        defer { buffer.deallocate() }
        let decoder = photos.photos[key.photo].decoder
        _ = try decodes.measure { try Thumbnail.write(key, decoder: decoder, into: buffer) }
        return try body(UnsafeRawBufferPointer(buffer))
    }

    func source(for key: ThumbnailKey) async throws -> any ThumbnailSource {
        // A box, so the decoded bytes live until the response is sent.
        let box = try ThumbnailBox(byteCount: Thumbnail.byteCount(width: key.width, height: key.height))
        let decoder = photos.photos[key.photo].decoder
        _ = try decodes.measure { try Thumbnail.write(key, decoder: decoder, into: box.bytes) }
        return RetainedSource(owner: box, byteCount: box.bytes.count) { box, range in
            ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: box.bytes[range]))
        }
    }

    func cacheFigures() -> CacheFigures {
        CacheFigures(hits: 0, misses: decodes.decodes, evictions: 0, cachedBytes: 0)
    }
}

/// The CPU baseline: every thumbnail of a small gallery decoded at start-up into a dictionary
/// that never changes, so a request is one look-up and the same copy into the response that the
/// caches make. The server's cost per request over this is what a cache adds.
final class PreloadedThumbnails: ThumbnailProvider {
    let mode = CacheMode.preloaded
    let configurationNote: String
    private let thumbnails: [ThumbnailKey: [UInt8]]
    private let lookUps = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)

    /// Decodes every photo at every size in `sizes`.
    /// - Parameters:
    ///   - photos: The photos.
    ///   - sizes: The sizes.
    ///   - decodes: Where the start-up decodes are counted.
    /// - Throws: A decode error.
    init(photos: PhotoStore, sizes: [(width: Int, height: Int)], decodes: DecodeCounters) throws {
        var thumbnails: [ThumbnailKey: [UInt8]] = [:]
        var bytes = 0
        for photo in photos.photos.indices {
            for size in sizes {
                let key = ThumbnailKey(photo: photo, width: size.width, height: size.height)
                var thumbnail = [UInt8](repeating: 0, count: Thumbnail.byteCount(width: size.width, height: size.height))
                try thumbnail.withUnsafeMutableBytes { buffer in
                    _ = try decodes.measure { try Thumbnail.write(key, decoder: photos.photos[photo].decoder, into: buffer) }
                }
                bytes += thumbnail.count
                thumbnails[key] = thumbnail
            }
        }
        self.thumbnails = thumbnails
        configurationNote = "preloaded: \(thumbnails.count) thumbnails (\(bytes >> 10) KiB) decoded at start-up, "
            + "sizes \(sizes.map { "\($0.width)x\($0.height)" }.joined(separator: ","))"
    }

    func withThumbnail<Result>(_ key: ThumbnailKey, _ body: (UnsafeRawBufferPointer) throws -> Result) async throws -> Result {
        guard let thumbnail = thumbnails[key] else {
            refusals.add(1, ordering: .relaxed)
            throw ThumbnailError.notPreloaded(key)
        }
        lookUps.add(1, ordering: .relaxed)
        return try thumbnail.withUnsafeBytes(body)
    }

    func source(for key: ThumbnailKey) async throws -> any ThumbnailSource {
        guard let thumbnail = thumbnails[key] else {
            refusals.add(1, ordering: .relaxed)
            throw ThumbnailError.notPreloaded(key)
        }
        lookUps.add(1, ordering: .relaxed)
        return RetainedSource(owner: thumbnail, byteCount: thumbnail.count) { thumbnail, range in
            thumbnail.withUnsafeBytes { ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    func cacheFigures() -> CacheFigures {
        CacheFigures(
            hits: lookUps.load(ordering: .relaxed), misses: refusals.load(ordering: .relaxed), evictions: 0,
            entries: thumbnails.count, cachedBytes: thumbnails.values.reduce(0) { $0 + $1.count })
    }
}
