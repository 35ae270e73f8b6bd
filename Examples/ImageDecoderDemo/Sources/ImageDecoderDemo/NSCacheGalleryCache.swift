import Foundation
import Glibc

/// A decoded image as an NSCache value: a class owning its bytes.
///
/// The bytes are a private mapping of their own, unmapped on deinit, so an evicted image gives
/// its memory back at once. With malloc, glibc raises its mmap threshold after the first free
/// of a large block; later images then come from the heap, and freed ones stay resident there:
/// an NSCache trimmed to its cost limit would still grow past the memory limit. This is the
/// fairest setting for NSCache, not the usual one.
final class DecodedImageBox {
    let bytes: UnsafeMutableRawBufferPointer
    private let mappedByteCount: Int

    init(byteCount: Int) {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappedByteCount = (byteCount + pageSize - 1) / pageSize * pageSize
        guard let base = mmap(nil, mappedByteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED
        else { fatalError("image-decoder-demo: mmap of \(byteCount) bytes failed: errno \(errno)") }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
    }

    deinit { munmap(bytes.baseAddress, mappedByteCount) }
}

/// Counts what NSCache evicts. swift-corelibs-foundation calls the delegate with its lock held:
/// this only adds to counters, and the access loop is single-threaded.
final class EvictionCounter: NSObject, NSCacheDelegate {
    var evictions = 0
    var evictedBytes = 0

    func cache(_ cache: NSCache<AnyObject, AnyObject>, willEvictObject obj: Any) {
        evictions += 1
        if let box = obj as? DecodedImageBox { evictedBytes += box.bytes.count }
    }
}

/// The gallery on Foundation's NSCache, as an application would use it: decode on a miss into
/// a new object, `setObject(_:forKey:cost:)` with the byte count as the cost.
///
/// On Linux NSCache knows nothing of memory pressure: with no limit it keeps everything; with
/// `totalCostLimit` it evicts (the cheapest objects first, in swift-corelibs-foundation) once
/// the total cost passes the limit.
final class NSCacheGalleryCache: GalleryCache {
    let kind: CacheKind
    let configurationNote: String
    private let gallery: Gallery
    private let cache = NSCache<NSNumber, DecodedImageBox>()
    private let counter = EvictionCounter()
    private var hits = 0
    private var decodes = 0
    private var insertedBytes = 0

    /// - Parameters:
    ///   - gallery: The gallery.
    ///   - totalCostLimit: The cost limit in bytes, or nil for none (plain NSCache).
    ///   - why: How the limit was chosen, for the table.
    init(gallery: Gallery, totalCostLimit: Int?, why: String = "") {
        self.gallery = gallery
        self.kind = totalCostLimit == nil ? .nscache : .nscacheTuned
        if let totalCostLimit {
            cache.totalCostLimit = totalCostLimit
            configurationNote = "NSCache, totalCostLimit \(mebibytes(totalCostLimit)) MiB (cost = bytes)\(why)"
        } else {
            configurationNote = "NSCache, no limits"
        }
        cache.delegate = counter
    }

    /// The cost limit a careful user would set for `memoryLimit`: the limit, less what the
    /// process uses besides the cache (its anonymous RSS just before the workload starts), less room
    /// for one more decoded object (NSCache evicts only after `setObject`, so the new object
    /// and a full cache coexist for a moment), less 16 MiB of slack for the allocator and
    /// stacks. Anything higher is OOM-killed sooner or later; anything lower wastes memory
    /// the volatile cache gets to use.
    /// - Parameters:
    ///   - memoryLimit: The memory limit in bytes.
    ///   - baselineResident: Resident bytes of the process before the cache holds anything.
    ///   - largestObject: The largest decoded object in bytes.
    /// - Returns: The cost limit (at least 1 MiB).
    static func tunedCostLimit(memoryLimit: Int, baselineResident: Int, largestObject: Int) -> Int {
        max(1 << 20, memoryLimit - baselineResident - largestObject - (16 << 20))
    }

    func access(_ item: GalleryItem) throws -> UInt64? {
        let key = NSNumber(value: item.index)
        if let box = cache.object(forKey: key) {
            hits += 1
            return DecodedImage.sampledChecksum(UnsafeRawBufferPointer(box.bytes), for: item)
        }
        let box = DecodedImageBox(byteCount: item.byteCount)
        try DecodedImage.decode(item, of: gallery, into: box.bytes)
        decodes += 1
        let checksum = DecodedImage.sampledChecksum(UnsafeRawBufferPointer(box.bytes), for: item)
        insertedBytes += item.byteCount
        cache.setObject(box, forKey: key, cost: item.byteCount)
        return checksum
    }

    func figures() -> CacheFigures {
        CacheFigures(
            hits: hits, regenerations: decodes, evictions: counter.evictions,
            residentBytes: insertedBytes - counter.evictedBytes)
    }
}
