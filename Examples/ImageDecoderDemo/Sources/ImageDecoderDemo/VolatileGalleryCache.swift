import VolatileCache

/// The gallery on `VolatileCache`: each decoded image is written by the decoder straight into
/// cache memory (size first: the item knows its decoded size before decoding). Recently used
/// images stay in the hot set; older ones are volatile and the kernel may take their pages
/// when the cgroup runs short, after which the next access decodes again.
final class VolatileGalleryCache: GalleryCache {
    let kind: CacheKind
    let configurationNote: String
    private let gallery: Gallery
    private let cache: VolatileCache<Int>

    /// - Parameters:
    ///   - gallery: The gallery.
    ///   - hotMiB: The hot-set budget; nil keeps the cache's default.
    ///   - policy: The residency policy (`--policy`).
    ///   - kind: How the run is labelled.
    ///   - volatility: What idle images become (`--volatility`).
    /// - Throws: The cache's error when it cannot create its arena.
    init(gallery: Gallery, hotMiB: Int?, policy: CachePolicy = .adaptive, kind: CacheKind = .volatile, volatility: Volatility = .automatic) throws {
        var configuration = VolatileCache<Int>.Configuration()
        if let hotMiB { configuration.hotByteLimit = hotMiB << 20 }
        configuration.policy = policy
        configuration.volatility = volatility
        self.kind = kind
        self.gallery = gallery
        self.cache = try VolatileCache<Int>(configuration: configuration)
        self.configurationNote = "VolatileCache, hot set \(configuration.hotByteLimit >> 20) MiB, no cost limit, policy \(policy.rawValue), volatility \(volatility)"
    }

    func access(_ item: GalleryItem) throws -> UInt64? {
        let gallery = self.gallery
        return try cache.withValue(DecodedImage.self, forKey: item.index, regenerate: { context in
            // Size first: the header gives the object's size; the decoder then writes the
            // pixels straight into cache memory after it. After a drop the whole image is
            // decoded again: every decode inflates the whole PNG anyway, so rewriting only the
            // dropped pages would save little.
            try context.write(DecodedImage.self, header: DecodedImage.Header(item)) { pixels in
                try DecodedImage.decodePixels(item, of: gallery, into: pixels)
            }
        }) { view in
            DecodedImage.sampledChecksum(view, for: item)
        }
    }

    /// The cache's volatility figures (swappable bytes, swap-ins, learned costs).
    var volatility: VolatilityStatistics { cache.statistics.volatility }

    func figures() -> CacheFigures {
        let statistics = cache.statistics
        return CacheFigures(
            hits: statistics.hits, regenerations: statistics.regenerations, drops: statistics.droppedObjects,
            evictions: statistics.evictions, residentBytes: statistics.hotBytes + cache.residentVolatileBytes())
    }
}
