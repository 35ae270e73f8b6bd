import Testing
import VolatileCache
import VolatileCacheTesting
import VolatileMemory

// The README's API tour, compiled and run: if the public API drifts from the README, this
// file stops compiling or its expectations fail. Keep the two in step.

/// A tile format with a size known from its header (the README's two-step regenerator).
private struct TileHeader {
    var byteCount: Int
    init(parsing source: [UInt8]) throws { byteCount = Int(source[0]) * 4096 }
}

private func renderTile(_ header: TileHeader, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    for index in 0..<header.byteCount { buffer[index] = UInt8(truncatingIfNeeded: index &* 31) }
    return header.byteCount
}

/// A decoded image: a small header, then RGBA pixels (the README's typed value).
private enum DecodedImage: VolatileRepresentable {
    struct Header: Sendable { var width: Int; var height: Int }
    struct View { var width: Int; var height: Int; var pixels: UnsafeRawBufferPointer }
    static func byteCount(for header: Header) -> Int { 16 + header.width * header.height * 4 }
    static func encode(_ header: Header, into bytes: UnsafeMutableRawBufferPointer) -> Int {
        bytes.storeBytes(of: header.width, toByteOffset: 0, as: Int.self)
        bytes.storeBytes(of: header.height, toByteOffset: 8, as: Int.self)
        return 16
    }
    static func decodeHeader(from bytes: UnsafeRawBufferPointer) -> (header: Header, byteCount: Int) {
        (Header(width: bytes.load(fromByteOffset: 0, as: Int.self), height: bytes.load(fromByteOffset: 8, as: Int.self)), 16)
    }
    static func view(of bytes: UnsafeRawBufferPointer) -> View {
        let header = decodeHeader(from: bytes).header
        return View(width: header.width, height: header.height, pixels: UnsafeRawBufferPointer(rebasing: bytes[16...]))
    }
}

@Suite("README examples")
struct ReadmeExamplesTests {
    @Test("The cache tour")
    func cacheTour() throws {
        let source: [UInt8] = [2]
        let cache = try VolatileCache<String>(configuration: .init(
            hotByteLimit: 64 << 20,      // unpinned objects stay non-volatile up to this many bytes
            countLimit: 10_000))         // optional; also totalCostLimit, maximumReservedBytes

        // Get or regenerate. The regenerator writes straight into cache memory.
        let checksum = try cache.withBytes(forKey: "tile/12/2048/1361", regenerate: { context in
            let header = try TileHeader(parsing: source)            // two-step: size first...
            try context.write(byteCount: header.byteCount) { buffer in
                try renderTile(header, into: buffer)                 // ...then the body, in place
            }
        }) { bytes in
            bytes.reduce(0, &+)                                      // pinned while the body runs
        }
        #expect(checksum == (0..<8192).reduce(UInt8(0)) { $0 &+ UInt8(truncatingIfNeeded: $1 &* 31) })

        // Typed values laid out in raw bytes, read back without a copy.
        let width = try cache.withValue(DecodedImage.self, forKey: "photo", regenerate: { context in
            try context.write(DecodedImage.self, header: .init(width: 64, height: 32)) { pixels in
                _ = pixels.initializeMemory(as: UInt8.self, repeating: 0x7F)
                return pixels.count
            }
        }) { image in image.width }
        #expect(width == 64)

        // A ~Copyable pinned handle for longer holds; released when it goes out of scope.
        let pinned = try cache.pinnedValue(forKey: "model") { context in
            try context.write(byteCount: 4096) { buffer in _ = buffer.initializeMemory(as: UInt8.self, repeating: 1); return 4096 }
        }
        #expect(pinned.withUnsafeBytes { $0.count } == 4096)
        _ = consume pinned

        try cache.insert([1, 2, 3], forKey: "k")
        #expect(cache.contains("k"))
        cache.removeValue(forKey: "k")
        cache.shed()                                   // demote the hot set now
        #expect(cache.statistics.hotBytes == 0)
        cache.removeAll()
        #expect(cache.statistics.entryCount == 0)
    }

    @Test("The async tour")
    func asyncTour() async throws {
        let cache = try VolatileCache<String>()
        // Async, with single flight: concurrent misses on one key run one regeneration.
        let bytes = try await cache.bytes(forKey: "report.json") { context in
            let data = try await fetchAndParse()
            try data.withUnsafeBytes { try context.write(contentsOf: $0) }
        }
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"ok\":true}")
    }

    private func fetchAndParse() async throws -> [UInt8] {
        await Task.yield()
        return Array("{\"ok\":true}".utf8)
    }

    @Test("The memory layer tour")
    func memoryTour() throws {
        let arena = try VolatileArena()
        var pinned = try arena.allocate(byteCount: 1 << 20)
        pinned.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 9) }
        let idle = pinned.unpin()                           // MADV_FREE; `pinned` is consumed
        try idle.dropPages([3])                             // (what memory pressure would do)
        let outcome = idle.pin()
        switch consume outcome {
        case .pinned(var extent):
            #expect(extent.report == .dropped(pages: [3]))
            let dropped = extent.report.droppedPages
            extent.withUnsafeMutableBytes { bytes in
                for page in dropped {
                    let start = page * arena.pageSize
                    _ = UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + arena.pageSize])
                        .initializeMemory(as: UInt8.self, repeating: 9)
                }
            }
            #expect(extent.withUnsafeBytes { $0.allSatisfy { $0 == 9 } })
        case .failed(_, let error):
            Issue.record("pin failed: \(error)")
        }
    }

    @Test("The testing tour: drop injection")
    func dropInjectionTour() throws {
        let cache = try VolatileCache<Int>(configuration: .init(hotByteLimit: 0))
        for key in 0..<8 {
            try cache.insert([UInt8](repeating: UInt8(key), count: 16_384), forKey: key)
        }
        let injector = CacheDropInjector(cache)
        let dropped = try injector.drop(fraction: 0.5, seed: 42)   // real kernel drops, now
        #expect(dropped > 0)
    }
}

/// The README's "Blocking and async calls" snippets, side by side: the same call, with and
/// without `await` (the blocking form is `noasync`, so only the async one compiles in async code).
@Suite("README examples: blocking and async forms")
struct ReadmeBlockingAndAsyncTests {
    let cache: VolatileCache<String>
    init() throws { cache = try VolatileCache<String>() }

    private func render(_ key: String) throws -> [UInt8] { Array(key.utf8) }
    private func fetch(_ key: String) async throws -> [UInt8] {
        await Task.yield()
        return Array(key.utf8)
    }

    // Synchronous code, on a thread you own: blocks while another thread regenerates the key.
    func thumbnail(_ key: String) throws -> [UInt8] {
        try cache.bytes(forKey: key) { context in
            let pixels = try render(key)
            try pixels.withUnsafeBytes { try context.write(contentsOf: $0) }
        }
    }

    // Async code: the same call with `await`; waiting suspends the task, not the thread.
    func thumbnail(_ key: String) async throws -> [UInt8] {
        try await cache.bytes(forKey: key) { context in
            let pixels = try await fetch(key)
            try pixels.withUnsafeBytes { try context.write(contentsOf: $0) }
        }
    }

    @Test("the blocking form, from synchronous code")
    func blockingForm() throws {
        #expect(try thumbnail("a") == Array("a".utf8))
        #expect(cache.statistics.regenerations == 1)
    }

    @Test("the async form, from async code, with concurrent misses regenerating once")
    func asyncForm() async throws {
        async let first: [UInt8] = thumbnail("b")
        async let second: [UInt8] = thumbnail("b")
        let results = try await [first, second]
        #expect(results == [Array("b".utf8), Array("b".utf8)])
        #expect(cache.statistics.regenerations == 1)
    }
}
