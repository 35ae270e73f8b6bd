import Glibc
public import Hummingbird
import Synchronization

/// The application behind the routes: the photos, the provider (cache), and the counters that
/// `/stats` and `/metrics` report. Handlers call it; it knows nothing of the router.
public final class ThumbnailService: Sendable {
    /// The photos.
    public let photos: PhotoStore
    /// The cache in front of the decoder.
    public let provider: any ThumbnailProvider
    /// Every decode, whichever provider ran it.
    public let decodes: DecodeCounters
    let requests = RequestCounters()
    private let started = ContinuousClock.now

    /// Creates the service with a ready provider.
    /// - Parameters:
    ///   - photos: The photos.
    ///   - provider: The provider.
    ///   - decodes: The counters the provider counts its decodes in.
    public init(photos: PhotoStore, provider: any ThumbnailProvider, decodes: DecodeCounters) {
        self.photos = photos
        self.provider = provider
        self.decodes = decodes
    }

    /// Creates the service and the provider the options ask for.
    /// - Parameters:
    ///   - options: The options (`cache`, `hotMiB`, `memoryLimitMiB`, `preloadSizes`, …).
    ///   - photos: The photos.
    /// - Throws: The cache's error, or a decode error while preloading.
    public convenience init(options: ServerOptions, photos: PhotoStore) throws {
        let decodes = DecodeCounters()
        let provider: any ThumbnailProvider
        switch options.cache {
        case .volatile:
            provider = try VolatileThumbnails(photos: photos, hotMiB: options.hotMiB, decodes: decodes)
        case .nscache:
            provider = NSCacheThumbnails(photos: photos, totalCostLimit: nil, decodes: decodes)
        case .nscacheTuned:
            let limitMiB = options.memoryLimitMiB ?? 256
            if let fixed = options.nscacheCostLimitMiB {
                provider = NSCacheThumbnails(photos: photos, totalCostLimit: fixed << 20, why: " (--nscache-cost-limit-mib)", decodes: decodes)
            } else {
                // Anonymous RSS: what the memory cgroup is charged for this process, less page cache.
                let baseline = ProcessFigures.anonymousResidentBytes()
                let inFlight = NSCacheThumbnails.defaultInFlightBytes
                let limit = NSCacheThumbnails.tunedCostLimit(memoryLimit: limitMiB << 20, baselineResident: baseline, inFlight: inFlight)
                let why = " = limit \(limitMiB) - anonymous RSS \(baseline >> 20) - requests in flight \(inFlight >> 20) - slack 16 MiB"
                provider = NSCacheThumbnails(photos: photos, totalCostLimit: limit, why: why, decodes: decodes)
            }
        case .none:
            provider = UncachedThumbnails(photos: photos, decodes: decodes)
        case .preloaded:
            provider = try PreloadedThumbnails(
                photos: photos, sizes: options.preloadSizes.map { (width: $0.width, height: $0.height) }, decodes: decodes)
        }
        self.init(photos: photos, provider: provider, decodes: decodes)
    }

    // MARK: Thumbnails

    /// The response for `GET /photos/{name}/{size}`: 200 with the BMP, 400 for a bad size, 404
    /// for an unknown photo (or a size `preloaded` does not hold), 500 if decoding fails.
    /// - Parameters:
    ///   - name: The photo's name.
    ///   - size: The size component, `WIDTHxHEIGHT`.
    /// - Returns: The response.
    public func thumbnailResponse(name: Substring, size: Substring) async -> Response {
        guard let (width, height) = Thumbnail.parseSize(size) else {
            return Self.textResponse(.badRequest, "bad size \"\(size.prefix(32))\": expected WIDTHxHEIGHT, each 1 to \(Thumbnail.maximumEdge)\n")
        }
        guard let photo = photos.index(named: name) else {
            return Self.textResponse(.notFound, "no photo named \"\(name.prefix(64))\"\n")
        }
        let key = ThumbnailKey(photo: photo, width: width, height: height)
        do {
            let source = try await provider.source(for: key)
            let total = source.byteCount
            let first = source.firstChunk
            let counters = requests
            let body: ResponseBody
            if total <= Thumbnail.chunkByteCount {
                counters.bodyBytes.add(total, ordering: .relaxed)
                body = ResponseBody(byteBuffer: first)
            } else {
                // Chunks, each copied when the connection can take it: a response in flight holds
                // about one chunk of its own instead of a whole copy of the thumbnail.
                body = ResponseBody(contentLength: total) { writer in
                    try await writer.write(first)
                    var offset = first.readableBytes
                    while offset < total {
                        let chunk = try await source.copy(offset..<min(total, offset + Thumbnail.chunkByteCount))
                        try await writer.write(chunk)
                        offset += chunk.readableBytes
                    }
                    try await writer.finish(nil)
                    counters.bodyBytes.add(total, ordering: .relaxed)
                }
            }
            return Response(
                status: .ok, headers: [.contentType: Thumbnail.mediaType, .contentLength: String(total)], body: body)
        } catch let error as ThumbnailError {
            return Self.textResponse(.notFound, "\(error)\n")
        } catch {
            return Self.textResponse(.internalServerError, "cannot make \(key): \(error)\n")
        }
    }

    static func textResponse(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Figures

    /// The figures now, as `/stats` returns them.
    /// - Returns: The snapshot.
    public func statistics() -> ServerStatistics {
        ServerStatistics(
            cache: provider.mode, configuration: provider.configurationNote,
            uptimeSeconds: Self.seconds(started.duration(to: .now)),
            requests: requests.snapshot(), bodyBytes: requests.bodyBytes.load(ordering: .relaxed),
            decodes: decodes.decodes, decodeSeconds: decodes.seconds,
            cpuSeconds: ProcessFigures.cpuSeconds(), residentBytes: ProcessFigures.residentBytes(),
            cacheFigures: provider.cacheFigures())
    }

    /// The figures as Prometheus text exposition (format 0.0.4).
    /// - Returns: The text.
    public func prometheusText() -> String {
        let s = statistics()
        let c = s.cacheFigures
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { text += name + (sample.labels.isEmpty ? "" : "{\(sample.labels)}") + " " + sample.value + "\n" }
        }
        func one(_ value: Int) -> [(labels: String, value: String)] { [("", String(value))] }
        metric("thumbnail_server_info", "gauge", "The cache this server runs with.", [("cache=\"\(s.cache.rawValue)\"", "1")])
        metric("thumbnail_http_requests_total", "counter", "HTTP requests answered, by status class.", [
            ("code=\"2xx\"", String(s.requests.success)), ("code=\"4xx\"", String(s.requests.clientError)),
            ("code=\"5xx\"", String(s.requests.serverError)), ("code=\"other\"", String(s.requests.other)),
        ])
        metric("thumbnail_response_body_bytes_total", "counter", "Bytes of thumbnails sent.", one(s.bodyBytes))
        metric("thumbnail_decodes_total", "counter", "PNG decodes run.", one(s.decodes))
        metric("thumbnail_decode_seconds_total", "counter", "Seconds spent decoding, all threads.", [("", String(s.decodeSeconds))])
        metric("thumbnail_cache_hits_total", "counter", "Requests served from the cache without decoding.", one(c.hits))
        metric("thumbnail_cache_misses_total", "counter", "Requests that found nothing cached.", one(c.misses))
        metric("thumbnail_cache_evictions_total", "counter", "Thumbnails the cache threw out.", one(c.evictions))
        if let drops = c.drops {
            metric("thumbnail_cache_drops_total", "counter", "Cached thumbnails found with pages the kernel had dropped.", one(drops))
        }
        if let entries = c.entries {
            metric("thumbnail_cache_entries", "gauge", "Thumbnails in the cache.", one(entries))
        }
        var bytes: [(labels: String, value: String)] = [("state=\"all\"", String(c.cachedBytes))]
        if let hot = c.hotBytes { bytes.append(("state=\"hot\"", String(hot))) }
        if let volatile = c.volatileBytes { bytes.append(("state=\"volatile\"", String(volatile))) }
        if let resident = c.residentVolatileBytes { bytes.append(("state=\"volatile_resident\"", String(resident))) }
        metric("thumbnail_cache_bytes", "gauge", "Bytes of cached thumbnails, by state.", bytes)
        metric("process_cpu_seconds_total", "counter", "User and system CPU time of the server process.", [("", String(s.cpuSeconds))])
        metric("process_resident_memory_bytes", "gauge", "Resident memory of the server process (lazily freed pages count).", one(s.residentBytes))
        return text
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}

/// Responses by status class, counted by ``RequestCountingMiddleware``.
final class RequestCounters: Sendable {
    let success = Atomic<Int>(0)
    let clientError = Atomic<Int>(0)
    let serverError = Atomic<Int>(0)
    let other = Atomic<Int>(0)
    let bodyBytes = Atomic<Int>(0)

    func count(_ status: HTTPResponse.Status) {
        switch status.code {
        case 200..<300: success.add(1, ordering: .relaxed)
        case 400..<500: clientError.add(1, ordering: .relaxed)
        case 500..<600: serverError.add(1, ordering: .relaxed)
        default: other.add(1, ordering: .relaxed)
        }
    }

    func snapshot() -> ServerStatistics.Requests {
        ServerStatistics.Requests(
            success: success.load(ordering: .relaxed), clientError: clientError.load(ordering: .relaxed),
            serverError: serverError.load(ordering: .relaxed), other: other.load(ordering: .relaxed))
    }
}

/// What `GET /stats` returns (JSON, snake_case keys).
public struct ServerStatistics: Sendable, Equatable, Codable, ResponseEncodable {
    /// Responses by status class (counted as they leave the router, so not this one).
    public struct Requests: Sendable, Equatable, Codable {
        /// 2xx responses.
        public var success: Int
        /// 4xx responses.
        public var clientError: Int
        /// 5xx responses.
        public var serverError: Int
        /// Any other status.
        public var other: Int

        /// All of them.
        public var total: Int { success + clientError + serverError + other }

        enum CodingKeys: String, CodingKey {
            case success = "2xx"
            case clientError = "4xx"
            case serverError = "5xx"
            case other
        }
    }

    /// The cache.
    public var cache: CacheMode
    /// How it is configured.
    public var configuration: String
    /// Seconds since the service was created.
    public var uptimeSeconds: Double
    /// Responses so far.
    public var requests: Requests
    /// Bytes of thumbnails sent.
    public var bodyBytes: Int
    /// Decodes run, whichever provider ran them.
    public var decodes: Int
    /// Seconds spent decoding, all threads.
    public var decodeSeconds: Double
    /// User and system CPU time of this process.
    public var cpuSeconds: Double
    /// Resident memory of this process (RSS; lazily freed pages count until reclaimed).
    public var residentBytes: Int
    /// The cache's own figures.
    public var cacheFigures: CacheFigures

    enum CodingKeys: String, CodingKey {
        case cache, configuration, requests, decodes
        case uptimeSeconds = "uptime_seconds"
        case bodyBytes = "body_bytes"
        case decodeSeconds = "decode_seconds"
        case cpuSeconds = "cpu_seconds"
        case residentBytes = "resident_bytes"
        case cacheFigures = "cache_figures"
    }
}

/// This process's CPU time and memory, from getrusage and /proc.
enum ProcessFigures {
    /// User plus system CPU seconds so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    /// Resident set size (`/proc/self/statm`, second field).
    static func residentBytes() -> Int {
        guard let text = readSmallFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Resident anonymous memory (`RssAnon:` in `/proc/self/status`).
    static func anonymousResidentBytes() -> Int {
        guard let text = readSmallFile("/proc/self/status") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("RssAnon:") {
            let number = line.dropFirst("RssAnon:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return (number.flatMap { Int($0) } ?? 0) * 1024
        }
        return 0
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
