import Foundation
@testable import PNGDecoder
import Testing

/// Input built to cost time or memory out of proportion to its size: dimensions the data cannot
/// hold, long runs after the image data, ancillary chunks with bad CRCs (as found in real files).
@Suite("Hostile input")
struct HostileInputTests {
    typealias Chunks = [(String, [UInt8])]

    static func ihdr(width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8, interlaced: Bool) -> [UInt8] {
        StoredPNGWriter.bigEndian(width) + StoredPNGWriter.bigEndian(height) + [bitDepth, colorType, 0, 0, interlaced ? 1 : 0]
    }

    // MARK: - Dimensions the data cannot hold

    /// The issue's example: 69 bytes declaring 134,217,728×1 RGBA16, Adam7, with a 12-byte zlib
    /// stream. It used to allocate 2.5 GiB of scanlines before failing; now the parse refuses it.
    @Test("a 69-byte file claiming a gigabyte of scanlines fails in init, before any pixel memory")
    func issueExample() throws {
        let stream: [UInt8] = [0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00]
        let png = CorruptionTests.assemble([
            ("IHDR", Self.ihdr(width: 134_217_728, height: 1, bitDepth: 16, colorType: 6, interlaced: true)),
            ("IDAT", stream), ("IEND", []),
        ])
        #expect(png.count == 69)
        // Adam7 of a 1-row image: passes 1, 2, 4 and 6 hold 1/8, 1/8, 1/4 and 1/2 of the row's 8-byte
        // pixels, each with a filter byte.
        #expect(throws: PNGError.insufficientImageData(compressedByteCount: 12, scanlineByteCount: (1 << 30) + 4)) {
            try PNGDecoder(bytes: png)
        }
    }

    /// 200 headers with huge random dimensions over a tiny stream, every colour type, depth and
    /// interlacing (the issue found 93 of 200 such mutants allocating 0.5-2.5 GiB first): each is
    /// refused by the parse, by the pixel limit or by the 1032:1 bound, before any pixel memory.
    @Test("huge IHDR dimensions with a tiny IDAT are refused by init")
    func hugeDimensionsTinyData() {
        var random = SplitMix64(seed: 0xB16_D175)
        let stream = CorruptionTests.chunks(of: Fixtures.smallInterlaced).filter { $0.0 == "IDAT" }.flatMap(\.1)
        let formats: [(UInt8, UInt8)] = [(0, 1), (0, 16), (2, 8), (2, 16), (3, 8), (4, 16), (6, 8), (6, 16)]
        var refusedByRatio = 0
        for _ in 0..<200 {
            let (colorType, depth) = formats.randomElement(using: &random)!
            // Around 2²⁵ to 2²⁸ pixels: some over the default limit, most under it.
            let width = max(1, UInt32.random(in: 1...0x7FFF_FFFF, using: &random) >> UInt32.random(in: 0...30, using: &random))
            let height = UInt32(max(1, ((1 << 28) / Int(width)) >> Int.random(in: 0...3, using: &random)))
            var chunks: Chunks = [("IHDR", Self.ihdr(width: width, height: height, bitDepth: depth, colorType: colorType,
                                                      interlaced: Bool.random(using: &random)))]
            if colorType == 3 { chunks.append(("PLTE", [0, 0, 0])) }
            chunks += [("IDAT", stream), ("IEND", [])]
            do {
                _ = try PNGDecoder(bytes: CorruptionTests.assemble(chunks))
                Issue.record("\(width)×\(height) accepted")
            } catch .insufficientImageData(let compressed, let needed) {
                #expect(compressed == stream.count && needed > compressed * PNGDecoder.maximumInflateRatio)
                refusedByRatio += 1
            } catch .imageTooLarge {
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        #expect(refusedByRatio > 100)
    }

    @Test("the bound is deflate's real maximum: a stream near 1032:1 decodes")
    func maximumRatioIsReachable() throws {
        // A 2048×1024 1-bit gray image of zeros: 1024 rows of a filter byte and 256 data bytes.
        let width = 2048, height = 1024
        let total = (width / 8 + 1) * height
        var writer = DeflateBitWriter()
        writer.write(0x78, bits: 8)
        writer.write(0x01, bits: 8)
        writer.writeZeroRun(count: total, isFinal: true)
        writer.alignToByte()
        let stream = writer.bytes + adler32([], zeroCount: total)
        let png = CorruptionTests.assemble([
            ("IHDR", Self.ihdr(width: UInt32(width), height: UInt32(height), bitDepth: 1, colorType: 0, interlaced: false)),
            ("IDAT", stream), ("IEND", []),
        ])
        #expect(stream.count * 950 < total, "\(stream.count) bytes for \(total)")
        let pixels = try PNGDecoder(bytes: png).decode()
        #expect(pixels.count == width * height * 4)
        let opaqueBlack = [UInt32](repeating: UInt32(0xFF00_0000).littleEndian, count: width * height)
        #expect(Data(pixels) == opaqueBlack.withUnsafeBytes { Data($0) })
    }

    // MARK: - Data after the last scanline

    /// A valid 16×16 image whose zlib stream goes on with `tailZeros` zero bytes after the last row
    /// (1032 of them per stream byte), then an Adler-32 that is right or wrong.
    static func imageWithTail(tailZeros: Int, correctChecksum: Bool) -> (png: [UInt8], expected: [UInt8]) {
        let plain = StoredPNGWriter.make(width: 16, height: 16, interlaced: false) { x, y in (UInt8(x * 16), UInt8(y * 16), 7, 255) }
        let expected = try! PNGDecoder(bytes: plain).decode()
        var chunks = CorruptionTests.chunks(of: plain)
        let idat = chunks.firstIndex { $0.0 == "IDAT" }!
        let stored = chunks[idat].1
        // The writer's stream is zlib header, one final stored block (5 bytes), rows, Adler-32.
        let rows = Array(stored[7..<(stored.count - 4)])
        var writer = DeflateBitWriter()
        writer.write(0x78, bits: 8)
        writer.write(0x01, bits: 8)
        writer.writeStored(rows, isFinal: false)
        writer.writeZeroRun(count: tailZeros, isFinal: true)
        writer.alignToByte()
        var checksum = adler32(rows, zeroCount: tailZeros)
        if !correctChecksum { checksum[3] ^= 1 }
        chunks[idat].1 = writer.bytes + checksum
        return (CorruptionTests.assemble(chunks), expected)
    }

    @Test("a short tail after the last row is inflated and its checksum checked")
    func shortTailIsVerified() throws {
        let good = Self.imageWithTail(tailZeros: 258 * 100, correctChecksum: true)
        #expect(try PNGDecoder(bytes: good.png).decode() == good.expected)
        let bad = Self.imageWithTail(tailZeros: 258 * 100, correctChecksum: false)
        #expect(throws: PNGError.inflate(.checksumMismatch)) { try PNGDecoder(bytes: bad.png).decode() }
    }

    /// 256 MiB of zeros (a 254 KiB stream) after the rows, with a wrong checksum: decoding stops at
    /// the last row plus ``PNGDecoder/trailingOutputLimit``, so the bad checksum is never reached.
    /// Inflating the whole tail (the old behaviour) would reach it and throw.
    @Test("a long run of zeros after the last row is not inflated")
    func longTailIsNotInflated() throws {
        let tail = 258 * 1_040_000
        let hostile = Self.imageWithTail(tailZeros: tail, correctChecksum: false)
        #expect(hostile.png.count < 300_000)
        #expect(try PNGDecoder(bytes: hostile.png).decode() == hostile.expected)
    }

    @Test("the inflater's tail stops within the limit")
    func inflaterTailBound() throws {
        let hostile = Self.imageWithTail(tailZeros: 258 * 10_000, correctChecksum: true)
        let stream = CorruptionTests.chunks(of: hostile.png).filter { $0.0 == "IDAT" }.flatMap(\.1)
        try stream.withUnsafeBytes { raw in
            var inflater = Inflater(input: raw)
            let rows = UnsafeMutablePointer<UInt8>.allocate(capacity: 16 * 65)
            defer { rows.deallocate() }
            try inflater.read(into: rows, count: 16 * 65)
            #expect(try inflater.finish(trailingOutputLimit: 1 << 16) == .unverified)
            var whole = Inflater(input: raw)
            try whole.read(into: rows, count: 16 * 65)
            #expect(try whole.finish(trailingOutputLimit: 258 * 10_000) == .verified)
        }
    }

    // MARK: - Ancillary chunks with bad CRCs

    /// A shipped photo with `extra` chunks inserted after IHDR, their CRCs broken.
    static func photoWithBadAncillaryChunks(_ extra: Chunks) throws -> [UInt8] {
        let photo = try Fixtures.bytes(of: Fixtures.photosDirectory.appendingPathComponent("clock_motion.png"))
        var bytes = Array(photo[..<33])
        for (type, data) in extra {
            var chunk = StoredPNGWriter.chunk(type, data)
            chunk[chunk.count - 1] ^= 0x5A
            bytes += chunk
        }
        return bytes + photo[33...]
    }

    /// Like the two real files the issue found: a cLLI (content light level) and an iCCP (colour
    /// profile) chunk whose CRCs do not match. libpng and the Rust png crate skip them.
    @Test("ancillary chunks with bad CRCs (cLLI, iCCP) are skipped and reported")
    func badAncillaryCRC() throws {
        let photo = try Fixtures.bytes(of: Fixtures.photosDirectory.appendingPathComponent("clock_motion.png"))
        let reference = try PNGDecoder(bytes: photo)
        #expect(reference.skippedChunks.isEmpty)
        let cLLI: [UInt8] = StoredPNGWriter.bigEndian(1000) + StoredPNGWriter.bigEndian(400)
        let iCCP: [UInt8] = Array("ICC profile".utf8) + [0, 0, 0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        let damaged = try Self.photoWithBadAncillaryChunks([("cLLI", cLLI), ("iCCP", iCCP)])
        let decoder = try PNGDecoder(bytes: damaged)
        #expect(decoder.skippedChunks == ["cLLI", "iCCP"])
        #expect(try decoder.decode() == reference.decode())
    }

    @Test("a file of many bad ancillary chunks keeps a bounded list of their names")
    func manyBadAncillaryChunks() throws {
        let photo = try Fixtures.bytes(of: Fixtures.photosDirectory.appendingPathComponent("clock_motion.png"))
        let damaged = try Self.photoWithBadAncillaryChunks((0..<1000).map { ("zzZ\(Character(UnicodeScalar(UInt8(97 + $0 % 26))))", []) })
        let decoder = try PNGDecoder(bytes: damaged)
        #expect(decoder.skippedChunks.count == PNGDecoder.maximumSkippedChunkNames)
        #expect(decoder.skippedChunks.first == "zzZa")
        #expect(try decoder.decode() == PNGDecoder(bytes: photo).decode())
    }

    @Test("a tRNS chunk with a bad CRC is skipped: no transparency")
    func badTransparencyCRC() throws {
        let png = StoredPNGWriter.make(width: 4, height: 4, interlaced: false) { x, _ in (UInt8(x), 0, 0, 255) }
        var chunks = CorruptionTests.chunks(of: png)
        // RGBA8 with tRNS is ignored anyway; use an RGB8 image so the key would matter.
        chunks[0].1[9] = 2
        let row: [UInt8] = [0] + (0..<4).flatMap { x -> [UInt8] in [UInt8(x), 0, 0] }
        let rows = Array([[UInt8]](repeating: row, count: 4).joined())
        var writer = DeflateBitWriter()
        writer.write(0x78, bits: 8)
        writer.write(0x01, bits: 8)
        writer.writeStored(rows, isFinal: true)
        chunks[1].1 = writer.bytes + adler32(rows)
        let key: [UInt8] = [0, 1, 0, 0, 0, 0]  // pixel (1, 0, 0) transparent
        var bytes = CorruptionTests.assemble(Array(chunks[..<1]) + [("tRNS", key)] + chunks[1...])
        let withKey = try PNGDecoder(bytes: bytes).decode()
        #expect(withKey[4 * 1 + 3] == 0 && withKey[4 * 2 + 3] == 255)
        bytes[33 + 12 + key.count - 1] ^= 1  // last CRC byte of tRNS
        let decoder = try PNGDecoder(bytes: bytes)
        #expect(decoder.skippedChunks == ["tRNS"])
        #expect(try decoder.decode()[4 * 1 + 3] == 255)
    }

    @Test("critical chunks stay strict", arguments: ["IHDR", "PLTE", "IDAT", "IEND"])
    func criticalCRC(chunk type: String) throws {
        var chunks = CorruptionTests.chunks(of: Fixtures.smallInterlaced)
        if type == "PLTE" { chunks.insert(("PLTE", [1, 2, 3]), at: 1) }
        var bytes = Array(CorruptionTests.ChunkConstants.signature)
        for (name, data) in chunks {
            var chunk = StoredPNGWriter.chunk(name, data)
            if name == type { chunk[chunk.count - 1] ^= 1 }
            bytes += chunk
        }
        #expect(throws: PNGError.crcMismatch(chunk: type)) { try PNGDecoder(bytes: bytes) }
    }

    @Test("an unknown ancillary chunk with a bad CRC before IHDR is still out of place")
    func badAncillaryBeforeHeader() {
        var bytes = Array(CorruptionTests.ChunkConstants.signature)
        var chunk = StoredPNGWriter.chunk("teXt", Array("a\0b".utf8))
        chunk[chunk.count - 1] ^= 1
        bytes += chunk + Fixtures.smallInterlaced[8...]
        #expect(throws: PNGError.missingChunk("IHDR")) { try PNGDecoder(bytes: bytes) }
    }
}
