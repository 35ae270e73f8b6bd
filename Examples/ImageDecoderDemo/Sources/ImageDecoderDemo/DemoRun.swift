import Glibc

/// Runs the workload in this process: load the photos, build the gallery, make the cache, run
/// the access loop, print the table and the RESULT line.
enum DemoRun {
    /// Settings every variant must share for a fair comparison, printed before the run.
    static func galleryLine(_ gallery: Gallery, options: DemoOptions) -> String {
        "gallery: \(gallery.photos.count) photos, \(gallery.items.count) distinct decoded images, "
            + "\(mebibytes(gallery.totalByteCount)) MiB decoded (tile edge \(gallery.tileEdge) px, "
            + "largest \(mebibytes(gallery.largestByteCount)) MiB); accesses Zipf s=\(options.zipfExponent), seed \(options.seed)"
    }

    /// Loads the photos and builds the gallery the options ask for.
    /// - Throws: ``PhotoLibrary/LoadError``.
    static func makeGallery(options: DemoOptions) throws -> Gallery {
        let folder = try PhotoLibrary.locate(explicit: options.photosPath)
        let photos = try PhotoLibrary.load(from: folder)
        return Gallery.make(photos: photos, targetBytes: options.galleryMiB << 20)
    }

    /// Runs one workload here and prints its table; the RESULT line is left to the caller.
    /// - Parameter options: The options (`cache`, `seconds`, …).
    /// - Returns: The report.
    /// - Throws: A load, cache or decode error.
    static func run(options: DemoOptions) throws -> WorkloadReport {
        let gallery = try makeGallery(options: options)
        Output.line(galleryLine(gallery, options: options))
        let cache: any GalleryCache
        switch options.cache {
        case .volatile:
            cache = try VolatileGalleryCache(gallery: gallery, hotMiB: options.hotMiB, policy: options.policy, volatility: options.volatility)
        case .volatileLRU:
            cache = try VolatileGalleryCache(gallery: gallery, hotMiB: options.hotMiB, policy: .lru, kind: .volatileLRU, volatility: options.volatility)
        case .nscache:
            cache = NSCacheGalleryCache(gallery: gallery, totalCostLimit: nil)
        case .nscacheTuned:
            // Anonymous RSS: shared libraries are mostly in the page cache already, charged
            // to whoever read them first, so VmRSS would overstate what the cgroup sees.
            let baseline = ProcessMemory.anonymousResidentBytes()
            let limit = NSCacheGalleryCache.tunedCostLimit(
                memoryLimit: options.memoryLimitMiB << 20, baselineResident: baseline,
                largestObject: gallery.largestByteCount)
            let why = " = limit \(options.memoryLimitMiB) - anonymous RSS \(mebibytes(baseline))"
                + " - largest image \(mebibytes(gallery.largestByteCount)) - slack 16 MiB"
            cache = NSCacheGalleryCache(gallery: gallery, totalCostLimit: limit, why: why)
        case .none:
            cache = NoCache(gallery: gallery)
        }
        let progress = ProgressLine.make(label: options.cache.rawValue, ttyPath: options.progressTTY)
        var workload = GalleryWorkload(
            gallery: gallery,
            sampler: ZipfSampler(count: gallery.items.count, exponent: options.zipfExponent, seed: options.seed),
            duration: options.seconds)
        if let path = options.tracePath {
            workload.trace = try AccessTrace(path: path, header: "image-decoder-demo trace: index byteCount; " + galleryLine(gallery, options: options))
        }
        // A sandboxed child always emits SAMPLE lines (its parent parses them); in this process
        // they go to logs and pipes, not to a terminal.
        let burst = NeighbourBurst.start(options.neighbour)
        let report = try workload.run(cache: cache, progress: progress, emitSamples: options.inSandbox || isatty(1) == 0)
        if let burst { Output.line(burst.finish()) }
        if let volatile = cache as? VolatileGalleryCache { Output.line(VolatilityProbe.line(statistics: volatile.volatility, report: report)) }
        for line in report.tableLines { Output.line(line) }
        return report
    }
}
