import Foundation
import PNGDecoder
import Testing
import ThumbnailServerCore

/// The photos every test uses: the image-decoder demo's samples.
private let photos: PhotoStore = {
    do {
        return try PhotoStore(folder: PhotoStore.defaultFolder())
    } catch {
        fatalError("the sample photos must be in the tree: \(error)")
    }
}()

private func makeService(_ cache: CacheMode, preloadSizes: [ServerOptions.Size]? = nil) throws -> ThumbnailService {
    var options = ServerOptions()
    options.cache = cache
    options.memoryLimitMiB = 256
    if let preloadSizes { options.preloadSizes = preloadSizes }
    return try ThumbnailService(options: options, photos: photos)
}

/// The pixels the server must send for `name` at `width` × `height`: the decoder's own output.
private func expectedPixels(_ name: String, width: Int, height: Int) throws -> [UInt8] {
    let index = try #require(photos.index(named: Substring(name)))
    return try photos.photos[index].decoder.decode(
        transform: PNGTransform(outputWidth: width, outputHeight: height, filter: .box))
}

@Suite("thumbnail route")
struct ThumbnailRouteTests {
    @Test("200 with a BMP of the asked size holding the decoder's pixels, from every cache", arguments: CacheMode.allCases)
    func servesTheThumbnail(cache: CacheMode) async throws {
        // 64x48 fits in one response chunk; 300x200 (234 KiB) streams in two.
        let sizes = [(64, 48), (300, 200)]
        let service = try makeService(cache, preloadSizes: sizes.map { .init(width: $0.0, height: $0.1) })
        try await withLiveServer(service) { port in
            for (width, height) in sizes {
                let expected = try expectedPixels("astronaut", width: width, height: height)
                // Twice: the second request is a hit for the caches.
                for _ in 0..<2 {
                    let response = try await httpGet(port: port, "/photos/astronaut/\(width)x\(height)")
                    #expect(response.status == 200)
                    #expect(response.headers["content-type"] == "image/bmp")
                    let byteCount = 122 + width * height * 4
                    #expect(response.headers["content-length"] == String(byteCount))
                    try #require(response.body.count == byteCount)
                    #expect(response.body[0] == UInt8(ascii: "B") && response.body[1] == UInt8(ascii: "M"))
                    #expect(response.word(at: 2) == UInt32(byteCount))  // file size
                    #expect(response.word(at: 10) == 122)  // pixel offset
                    #expect(response.word(at: 18) == UInt32(width))
                    #expect(Int32(bitPattern: response.word(at: 22)) == Int32(-height))  // negative: rows top-down
                    #expect(response.word(at: 26) == 32 << 16 | 1)  // 1 plane, 32 bits per pixel
                    #expect(response.word(at: 30) == 3)  // BI_BITFIELDS
                    #expect(response.word(at: 54) == 0x0000_00FF)  // red in byte 0
                    #expect(response.word(at: 66) == 0xFF00_0000)  // alpha in byte 3
                    #expect(Array(response.body[122...]) == expected)
                }
            }
        }
        let figures = service.statistics()
        #expect(figures.requests.success == 4)
        #expect(figures.bodyBytes == 2 * (122 + 64 * 48 * 4) + 2 * (122 + 300 * 200 * 4))
        if cache != CacheMode.none && cache != .preloaded {
            #expect(figures.cacheFigures.hits >= 2)
            #expect(figures.decodes == 2)
        }
    }

    @Test("400 with a short message for a bad size", arguments: [
        "0x10", "10x0", "2049x10", "10x2049", "10", "axb", "10x10x10", "+5x5", "-1x5", "99999x5", "x5", "5x",
    ])
    func rejectsBadSizes(size: String) async throws {
        let service = try makeService(.volatile)
        try await withLiveServer(service) { port in
            let response = try await httpGet(port: port, "/photos/astronaut/\(size)")
            #expect(response.status == 400)
            #expect(response.headers["content-type"] == "text/plain; charset=utf-8")
            #expect(response.text == "bad size \"\(size)\": expected WIDTHxHEIGHT, each 1 to 2048\n")
        }
        #expect(service.decodes.decodes == 0)
    }

    @Test("the largest size is served")
    func servesTheMaximum() async throws {
        let service = try makeService(.none)
        try await withLiveServer(service) { port in
            let response = try await httpGet(port: port, "/photos/brick/2048x1")
            #expect(response.status == 200)
            #expect(response.body.count == 122 + 2048 * 4)
        }
    }

    @Test("404 with a short message for an unknown photo, a size not preloaded, or an unknown path")
    func notFound() async throws {
        let service = try makeService(.preloaded, preloadSizes: [.init(width: 32, height: 32)])
        try await withLiveServer(service) { port in
            let unknown = try await httpGet(port: port, "/photos/nope/64x64")
            #expect(unknown.status == 404)
            #expect(unknown.text == "no photo named \"nope\"\n")
            let notPreloaded = try await httpGet(port: port, "/photos/coffee/33x32")
            #expect(notPreloaded.status == 404)
            #expect(notPreloaded.text == "photo \(photos.index(named: "coffee") ?? -1) at 33x32 was not preloaded (see --preload-sizes)\n")
            let noRoute = try await httpGet(port: port, "/photos/coffee")
            #expect(noRoute.status == 404)
        }
        #expect(service.statistics().requests.clientError == 3)
    }
}

@Suite("figures")
struct FiguresTests {
    @Test("/stats returns the figures as JSON")
    func statsJSON() async throws {
        let service = try makeService(.volatile)
        try await withLiveServer(service) { port in
            for uri in ["/photos/coffee/96x64", "/photos/coffee/96x64", "/photos/camera/96x64", "/photos/coffee/0x1"] {
                _ = try await httpGet(port: port, uri)
            }
            let response = try await httpGet(port: port, "/stats")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("application/json") == true)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
            #expect(json["cache"] as? String == "volatile")
            #expect(json["decodes"] as? Int == 2)
            #expect(json["body_bytes"] as? Int == 3 * (122 + 96 * 64 * 4))
            let requests = try #require(json["requests"] as? [String: Any])
            #expect(requests["2xx"] as? Int == 3)
            #expect(requests["4xx"] as? Int == 1)
            let cache = try #require(json["cache_figures"] as? [String: Any])
            #expect(cache["hits"] as? Int == 1)
            #expect(cache["misses"] as? Int == 2)
            #expect(cache["entries"] as? Int == 2)
            #expect(cache["drops"] as? Int == 0)
            #expect((cache["cached_bytes"] as? Int ?? 0) >= 2 * (122 + 96 * 64 * 4))
            #expect((json["cpu_seconds"] as? Double ?? 0) > 0)
            #expect((json["resident_bytes"] as? Int ?? 0) > 0)
            // The snapshot type reads its own JSON back.
            let decoded = try JSONDecoder().decode(ServerStatistics.self, from: Data(response.body))
            #expect(decoded.cacheFigures.hits == 1)
            #expect(decoded.requests.total == 4)
        }
    }

    @Test("/metrics returns Prometheus text with the same figures")
    func prometheus() async throws {
        let service = try makeService(.volatile)
        try await withLiveServer(service) { port in
            for uri in ["/photos/grass/50x50", "/photos/grass/50x50", "/photos/grass/50x50", "/photos/unknown/1x1"] {
                _ = try await httpGet(port: port, uri)
            }
            let response = try await httpGet(port: port, "/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let lines = Set(response.text.split(separator: "\n").map(String.init))
            for expected in [
                "# TYPE thumbnail_cache_hits_total counter",
                "thumbnail_server_info{cache=\"volatile\"} 1",
                "thumbnail_cache_hits_total 2",
                "thumbnail_cache_misses_total 1",
                "thumbnail_decodes_total 1",
                "thumbnail_http_requests_total{code=\"2xx\"} 3",
                "thumbnail_http_requests_total{code=\"4xx\"} 1",
                "thumbnail_response_body_bytes_total \(3 * (122 + 50 * 50 * 4))",
                "thumbnail_cache_entries 1",
                "thumbnail_cache_drops_total 0",
            ] {
                #expect(lines.contains(expected), "missing line: \(expected)")
            }
            // Every sample line is `name{labels} value` with a number for the value.
            for line in lines where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                #expect(parts.count == 2 && Double(parts[1]) != nil, "bad sample line: \(line)")
            }
        }
    }
}

@Suite("concurrency")
struct ConcurrencyTests {
    @Test("concurrent misses on one key decode once with the volatile cache")
    func singleFlight() async throws {
        let service = try makeService(.volatile)
        let expected = try expectedPixels("astronaut", width: 1024, height: 1024)
        let key = ThumbnailKey(photo: try #require(photos.index(named: "astronaut")), width: 1024, height: 1024)
        let bodies = await withTaskGroup(of: [UInt8]?.self) { group in
            for _ in 0..<16 {
                group.addTask { try? await service.provider.withThumbnail(key) { Array($0) } }
            }
            var all: [[UInt8]?] = []
            for await body in group { all.append(body) }
            return all
        }
        #expect(bodies.count == 16)
        for body in bodies {
            #expect(body.map { Array($0.dropFirst(122)) == expected } == true)
        }
        #expect(service.decodes.decodes == 1)
        #expect(service.statistics().cacheFigures.misses >= 1)
    }
}

@Suite("options")
struct OptionsTests {
    @Test("flags parse; bad values say what is wrong")
    func parse() throws {
        let options = try ServerOptions.parse([
            "--cache", "nscache-tuned", "--port", "0", "--hot-mib", "32", "--memory-limit-mib", "256",
            "--preload-sizes", "64x64,128x96", "--lifetime-seconds", "5",
        ])
        #expect(options.cache == .nscacheTuned)
        #expect(options.port == 0)
        #expect(options.hotMiB == 32)
        #expect(options.memoryLimitMiB == 256)
        #expect(options.preloadSizes == [.init(width: 64, height: 64), .init(width: 128, height: 96)])
        #expect(options.lifetimeSeconds == 5)
        #expect(throws: ServerOptions.ParseError.self) { try ServerOptions.parse(["--cache", "lru"]) }
        #expect(throws: ServerOptions.ParseError.self) { try ServerOptions.parse(["--preload-sizes", "0x1"]) }
        #expect(throws: ServerOptions.ParseError.self) { try ServerOptions.parse(["--port"]) }
    }
}
