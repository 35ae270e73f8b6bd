import Foundation
import Hummingbird
import Glibc
import Synchronization

/// A thumbnail as an NSCache value: a class owning its bytes in a private mapping of their own,
/// unmapped on deinit, so an evicted thumbnail gives its memory back at once (as the image-decoder
/// demo does: with malloc, freed large blocks may stay resident in the heap, which would make
/// NSCache look worse than it is).
final class ThumbnailBox: Sendable {
    // The memory is written once, before the box is shared, and only read after.
    nonisolated(unsafe) let bytes: UnsafeMutableRawBufferPointer
    private let mappedByteCount: Int

    /// - Throws: ``NSCacheThumbnails/MappingError`` when the kernel refuses the mapping.
    init(byteCount: Int) throws {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappedByteCount = (byteCount + pageSize - 1) / pageSize * pageSize
        guard let base = mmap(nil, mappedByteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED
        else { throw NSCacheThumbnails.MappingError(byteCount: byteCount, errno: errno) }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
    }

    deinit { munmap(bytes.baseAddress, mappedByteCount) }
}

/// Counts NSCache's evictions. swift-corelibs-foundation calls the delegate with its lock
/// held: this only adds to atomics.
final class NSCacheEvictionCounter: NSObject, NSCacheDelegate, Sendable {
    let evictions = Atomic<Int>(0)
    let evictedBytes = Atomic<Int>(0)

    func cache(_ cache: NSCache<AnyObject, AnyObject>, willEvictObject obj: Any) {
        evictions.add(1, ordering: .relaxed)
        if let box = obj as? ThumbnailBox { evictedBytes.add(box.bytes.count, ordering: .relaxed) }
    }
}

/// Thumbnails in Foundation's NSCache, as server code usually writes it: look up; on a miss
/// decode into a new object and `setObject(_:forKey:cost:)` with the byte count as cost.
/// Concurrent misses on one key each decode (NSCache has no single flight).
///
/// On Linux NSCache knows nothing of memory pressure: with no limit it keeps everything; with
/// `totalCostLimit` it evicts once the total cost passes the limit.
final class NSCacheThumbnails: ThumbnailProvider, @unchecked Sendable {
    // @unchecked: NSCache is documented thread-safe (swift-corelibs-foundation guards it with a
    // lock) but not marked Sendable; every other stored property is immutable or atomic.

    /// The kernel refused memory for a thumbnail.
    struct MappingError: Error, CustomStringConvertible {
        var byteCount: Int
        var errno: Int32
        var description: String { "mmap of \(byteCount) bytes failed: errno \(errno)" }
    }

    let mode: CacheMode
    let configurationNote: String
    private let cache = NSCache<NSNumber, ThumbnailBox>()
    private let counter = NSCacheEvictionCounter()
    private let photos: PhotoStore
    private let decodes: DecodeCounters
    private let hits = Atomic<Int>(0)
    private let misses = Atomic<Int>(0)
    private let insertedBytes = Atomic<Int>(0)

    /// - Parameters:
    ///   - photos: The photos.
    ///   - totalCostLimit: The cost limit in bytes (`nscache-tuned`), or nil (`nscache`).
    ///   - why: How the limit was chosen.
    ///   - decodes: Where decodes are counted.
    init(photos: PhotoStore, totalCostLimit: Int?, why: String = "", decodes: DecodeCounters) {
        self.photos = photos
        self.decodes = decodes
        if let totalCostLimit {
            mode = .nscacheTuned
            cache.totalCostLimit = totalCostLimit
            configurationNote = "NSCache, totalCostLimit \(totalCostLimit >> 20) MiB (cost = bytes)\(why)"
        } else {
            mode = .nscache
            configurationNote = "NSCache, no limits"
        }
        cache.delegate = counter
    }

    /// The cost limit fitted by hand to `memoryLimit`: the limit, less what the process uses
    /// besides the cache (anonymous RSS at start-up), less room for the responses and decodes in
    /// flight (`inFlight`: up to one response per connection, each a copy of a thumbnail, plus the
    /// decodes of concurrent misses), less 16 MiB of slack for the allocator and stacks.
    /// - Parameters:
    ///   - memoryLimit: The memory limit in bytes.
    ///   - baselineResident: Anonymous resident bytes before the cache holds anything.
    ///   - inFlight: Bytes reserved for requests in flight.
    /// - Returns: The cost limit (at least 1 MiB).
    static func tunedCostLimit(memoryLimit: Int, baselineResident: Int, inFlight: Int) -> Int {
        max(1 << 20, memoryLimit - baselineResident - inFlight - (16 << 20))
    }

    /// Bytes `nscache-tuned` keeps free for requests in flight: responses stream in 128 KiB
    /// chunks from the cached object, so this is mostly the decodes of concurrent misses (new
    /// objects not yet in the cache), about 1 MiB each. Fitted by hand in the load test: with 64
    /// connections and this allowance, the cgroup's peak stays about 30 MiB under a 256 MiB limit.
    static let defaultInFlightBytes = 32 << 20

    private static func cacheKey(_ key: ThumbnailKey) -> NSNumber {
        // Width and height are at most 2048 (< 2^12).
        NSNumber(value: key.photo << 24 | key.width << 12 | key.height)
    }

    /// The cached object, or a new one decoded and inserted.
    private func box(for key: ThumbnailKey) throws -> ThumbnailBox {
        let cacheKey = Self.cacheKey(key)
        if let box = cache.object(forKey: cacheKey) {
            hits.add(1, ordering: .relaxed)
            return box
        }
        misses.add(1, ordering: .relaxed)
        let byteCount = Thumbnail.byteCount(width: key.width, height: key.height)
        let box = try ThumbnailBox(byteCount: byteCount)
        let decoder = photos.photos[key.photo].decoder
        _ = try decodes.measure { try Thumbnail.write(key, decoder: decoder, into: box.bytes) }
        insertedBytes.add(byteCount, ordering: .relaxed)
        cache.setObject(box, forKey: cacheKey, cost: byteCount)
        return box
    }

    func withThumbnail<Result>(_ key: ThumbnailKey, _ body: (UnsafeRawBufferPointer) throws -> Result) async throws -> Result {
        let box = try box(for: key)
        return try withExtendedLifetime(box) { try body(UnsafeRawBufferPointer(box.bytes)) }
    }

    func source(for key: ThumbnailKey) async throws -> any ThumbnailSource {
        // The response holds the object: an eviction meanwhile does not free it.
        let box = try box(for: key)
        return RetainedSource(owner: box, byteCount: box.bytes.count) { box, range in
            ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: box.bytes[range]))
        }
    }

    func cacheFigures() -> CacheFigures {
        CacheFigures(
            hits: hits.load(ordering: .relaxed), misses: misses.load(ordering: .relaxed),
            evictions: counter.evictions.load(ordering: .relaxed),
            cachedBytes: insertedBytes.load(ordering: .relaxed) - counter.evictedBytes.load(ordering: .relaxed))
    }
}
