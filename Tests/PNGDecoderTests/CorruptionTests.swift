import Foundation
import PNGDecoder
import Testing

/// Corrupt, truncated and hostile input must end in a typed ``PNGError``, never a crash or a
/// runaway allocation.
@Suite("Corrupt input")
struct CorruptionTests {
    /// Parses and fully decodes `bytes`, returning the error if any. Typed throws make
    /// "anything but a PNGError" impossible; a crash or trap fails the whole run.
    @discardableResult
    static func outcome(_ bytes: [UInt8], transform: PNGTransform = .identity) -> PNGError? {
        do {
            let decoder = try PNGDecoder(bytes: bytes)
            _ = try decoder.decode(transform: transform)
            return nil
        } catch {
            return error
        }
    }

    /// The chunks of a valid file: (type, data).
    static func chunks(of png: [UInt8]) -> [(String, [UInt8])] {
        var result: [(String, [UInt8])] = []
        var offset = 8
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            let type = String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self)
            result.append((type, Array(png[(offset + 8)..<(offset + 8 + length)])))
            offset += 12 + length
        }
        return result
    }

    /// A PNG made of `chunks`, each with a correct CRC.
    static func assemble(_ chunks: [(String, [UInt8])]) -> [UInt8] {
        chunks.reduce(Array(ChunkConstants.signature)) { $0 + StoredPNGWriter.chunk($1.0, $1.1) }
    }

    enum ChunkConstants {
        static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    }

    @Test("the intact fixture decodes")
    func intact() throws {
        #expect(Self.outcome(Fixtures.smallInterlaced) == nil)
        #expect(Self.chunks(of: Fixtures.smallInterlaced).map(\.0) == ["IHDR", "tEXt", "IDAT", "IDAT", "IEND"])
    }

    @Test("truncation at every length throws truncated or badSignature")
    func everyTruncation() {
        let png = Fixtures.smallInterlaced
        for length in 0..<png.count {
            let error = Self.outcome(Array(png[..<length]))
            #expect(error == .truncated, "cut at \(length): \(String(describing: error))")
        }
    }

    @Test("a flipped bit anywhere after the signature fails a check, or skips the damaged ancillary chunk")
    func everyBitFlip() throws {
        let png = Fixtures.smallInterlaced
        let expected = try PNGDecoder(bytes: png).decode()
        // The fixture's tEXt chunk: a flip in its data or CRC, or one that keeps its type ancillary,
        // skips it (as libpng does); the image must then decode exactly as before.
        let text = 33..<(33 + 12 + 32)
        for index in 8..<png.count {
            for bit in [0, 3, 7] {
                var corrupt = png
                corrupt[index] ^= 1 << bit
                do {
                    let decoder = try PNGDecoder(bytes: corrupt)
                    let pixels = try decoder.decode()
                    #expect(text.contains(index) && decoder.skippedChunks.count == 1 && pixels == expected,
                            "flip bit \(bit) of byte \(index) went unnoticed")
                } catch {
                }
            }
        }
    }

    @Test("signature, CRC and header defects have their own errors")
    func namedErrors() {
        var png = Fixtures.smallInterlaced
        png[1] = 0x51
        #expect(Self.outcome(png) == .badSignature)
        #expect(Self.outcome(Array("GIF89a".utf8)) == .badSignature)

        png = Fixtures.smallInterlaced
        png[29] ^= 0xFF  // last CRC byte of IHDR
        #expect(Self.outcome(png) == .crcMismatch(chunk: "IHDR"))

        var chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks[0].1[9] = 5  // colour type 5 does not exist
        #expect({ if case .invalidHeader = Self.outcome(Self.assemble(chunks)) { true } else { false } }())

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks[0].1[8] = 4  // RGB at 4 bits per sample
        #expect({ if case .invalidHeader = Self.outcome(Self.assemble(chunks)) { true } else { false } }())

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks.insert(("abCD", [1, 2, 3]), at: 1)  // unknown ancillary: skipped
        #expect(Self.outcome(Self.assemble(chunks)) == nil)
        chunks[1].0 = "ABCD"  // unknown critical: refused
        #expect(Self.outcome(Self.assemble(chunks)) == .unknownCriticalChunk("ABCD"))

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks.removeAll { $0.0 == "IDAT" }
        #expect(Self.outcome(Self.assemble(chunks)) == .missingChunk("IDAT"))

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks.insert(("tEXt", Array("a\0b".utf8)), at: 3)  // splits the IDAT run
        #expect(Self.outcome(Self.assemble(chunks)) == .misplacedChunk("IDAT"))

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks.insert(("tRNS", [0, 1]), at: 1)  // RGB needs 6 bytes
        #expect({ if case .invalidTransparency = Self.outcome(Self.assemble(chunks)) { true } else { false } }())

        chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks[0].1[9] = 3  // indexed without PLTE
        #expect(Self.outcome(Self.assemble(chunks)) == .missingChunk("PLTE"))
    }

    @Test("bad zlib streams throw inflate errors")
    func badZlib() {
        let chunks = Self.chunks(of: Fixtures.smallInterlaced)
        let stream = chunks.filter { $0.0 == "IDAT" }.flatMap(\.1)
        func decode(_ stream: [UInt8]) -> PNGError? {
            Self.outcome(Self.assemble([chunks[0], ("IDAT", stream), ("IEND", [])]))
        }
        #expect(decode(stream) == nil)
        #expect(decode([0x79] + stream.dropFirst()) == .inflate(.invalidZlibHeader))  // FCHECK wrong
        #expect(decode([0x78, 0xBB] + stream.dropFirst(2)) == .inflate(.invalidZlibHeader))  // preset dictionary
        var badAdler = stream
        badAdler[badAdler.count - 1] ^= 1
        #expect(decode(badAdler) == .inflate(.checksumMismatch))
        #expect(decode(Array(stream.dropLast(4))) == .inflate(.unexpectedEndOfStream))
        #expect(decode(Array(stream.prefix(40))) == .inflate(.unexpectedEndOfStream))
        // A complete stream of too little data, and a reserved block type.
        #expect(decode([0x78, 0x01, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x01]) == .inflate(.notEnoughData))
        #expect(decode([0x78, 0x01, 0x07, 0x00]) == .inflate(.invalidBlockType))
        #expect(decode([0x78, 0x01, 0x01, 0x01, 0x00, 0xFF, 0xFF]) == .inflate(.storedLengthMismatch))
        // Fixed Huffman block whose first symbol is a match: distance past the start of output.
        #expect(decode([0x78, 0x01, 0x03, 0x02, 0x00, 0x00]) == .inflate(.distanceTooFarBack))
    }

    @Test("a bad filter type is reported with its row")
    func badFilter() {
        let png = StoredPNGWriter.make(width: 3, height: 4, interlaced: false) { _, _ in (1, 2, 3, 4) }
        // Stored block: zlib header (2) + block header (5) puts row 2's filter byte at 7 + 2 × 13.
        var chunks = Self.chunks(of: png)
        let idat = chunks.firstIndex { $0.0 == "IDAT" }!
        chunks[idat].1[7 + 2 * 13] = 9
        // The Adler-32 no longer matches either, but the filter byte is seen first.
        #expect(Self.outcome(Self.assemble(chunks)) == .invalidFilter(type: 9, row: 2))
    }

    @Test("huge declared dimensions are refused before any allocation", arguments: [
        (UInt32(0x7FFF_FFFF), UInt32(0x7FFF_FFFF)), (100_000, 100_000), (1, 0x7FFF_FFFF), (0x7FFF_FFFF, 1),
    ])
    func hugeDimensions(width: UInt32, height: UInt32) {
        var chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks[0].1.replaceSubrange(0..<8, with: StoredPNGWriter.bigEndian(width) + StoredPNGWriter.bigEndian(height))
        #expect(Self.outcome(Self.assemble(chunks)) == .imageTooLarge(width: Int(width), height: Int(height)))
    }

    @Test("dimensions of zero or over 2³¹−1 are invalid", arguments: [(UInt32(0), UInt32(5)), (5, 0), (0x8000_0000, 1)])
    func invalidDimensions(width: UInt32, height: UInt32) {
        var chunks = Self.chunks(of: Fixtures.smallInterlaced)
        chunks[0].1.replaceSubrange(0..<8, with: StoredPNGWriter.bigEndian(width) + StoredPNGWriter.bigEndian(height))
        #expect({ if case .invalidHeader = Self.outcome(Self.assemble(chunks)) { true } else { false } }())
    }

    @Test("a large declared size with a tiny stream fails fast, within the limit")
    func largeImageTinyStream() throws {
        var chunks = Self.chunks(of: Fixtures.smallInterlaced)
        let compressed = chunks.filter { $0.0 == "IDAT" }.map(\.1.count).reduce(0, +)
        chunks[0].1.replaceSubrange(0..<8, with: StoredPNGWriter.bigEndian(8000) + StoredPNGWriter.bigEndian(8000))
        // More than 1032 × the stream's size: refused by the parse.
        #expect(Self.outcome(Self.assemble(chunks)) == .insufficientImageData(compressedByteCount: compressed, scanlineByteCount: 192_015_000))
        // Within 1032 × the stream: the stream runs out while decoding.
        chunks = Self.chunks(of: StoredPNGWriter.make(width: 8, height: 8, interlaced: false) { x, y in (UInt8(x), UInt8(y), 0, 255) })
        chunks[0].1.replaceSubrange(4..<8, with: StoredPNGWriter.bigEndian(800))
        #expect(Self.outcome(Self.assemble(chunks)) == .inflate(.notEnoughData))
    }

    /// Seeded mutations of the zlib stream and header with CRCs repaired, so the inflater and
    /// unfilter see the garbage: each must decode or throw, in every transform path.
    @Test("seeded fuzzing of the image data and header")
    func fuzz() {
        var random = SplitMix64(seed: 0x5EED_F00D)
        let chunks = Self.chunks(of: Fixtures.smallInterlaced)
        let header = chunks[0].1
        let stream = chunks.filter { $0.0 == "IDAT" }.flatMap(\.1)
        let transforms = [
            PNGTransform.identity,
            PNGTransform(crop: PNGRect(x: 1, y: 1, width: 5, height: 5), outputWidth: 9, outputHeight: 2, filter: .box),
        ]
        var failures = 0
        let iterations = 3000
        for iteration in 0..<iterations {
            var data = stream
            var ihdr = header
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                switch Int.random(in: 0..<6, using: &random) {
                case 0: data[Int.random(in: 0..<data.count, using: &random)] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                case 1: data[Int.random(in: 0..<data.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 2: data.remove(at: Int.random(in: 0..<data.count, using: &random))
                case 3: data.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...data.count, using: &random))
                case 4: data = Array(data.prefix(Int.random(in: 2...data.count, using: &random)))
                default:
                    // Header fields: bit depth, colour type, interlace, or a small width/height.
                    let field = [3, 7, 8, 9, 12].randomElement(using: &random)!
                    ihdr[field] = [0, 1, 2, 3, 4, 6, 8, 16, 31].randomElement(using: &random)!
                }
            }
            let png = Self.assemble([("IHDR", ihdr), ("IDAT", data), ("IEND", [])])
            if Self.outcome(png, transform: transforms[iteration % 2]) != nil { failures += 1 }
        }
        // Nearly every mutation breaks the Adler-32; the point is that none crashed.
        #expect(failures > iterations / 2)
    }
}
