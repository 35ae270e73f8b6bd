/// The chunk layer: walks a PNG file's chunks, checks their CRCs and order, and keeps what decoding
/// needs. Knows nothing of pixels.
struct ChunkReader {
    /// What a PNG file's chunks say, before any image data is inflated.
    struct Contents {
        var header: PNGHeader
        var imageData: [UInt8]
        /// RGB triplets of `PLTE`, for indexed images.
        var palette: [UInt8]
        /// The raw `tRNS` payload, if present.
        var transparency: [UInt8]?
        /// Ancillary chunks skipped for a bad CRC, in file order.
        var skippedChunks: [String]
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Reads and checks every chunk of `bytes` up to `IEND`.
    ///
    /// A critical chunk with a bad CRC ends the read with an error; an ancillary one is skipped
    /// (libpng's default), since its contents cannot be trusted but the image does not need them.
    ///
    /// - Throws: ``PNGError`` naming the first defect found.
    /// - Complexity: O(*n*) in the size of the file.
    static func read(_ bytes: UnsafeRawBufferPointer, maximumPixelCount: Int) throws(PNGError) -> Contents {
        guard bytes.count >= 8 else {
            // A prefix of the signature is a truncated PNG; anything else is not a PNG.
            throw bytes.elementsEqual(signature.prefix(bytes.count)) ? .truncated : .badSignature
        }
        guard bytes.prefix(8).elementsEqual(signature) else { throw .badSignature }

        var header: PNGHeader?
        var imageData: [UInt8] = []
        // One allocation of at most the file's size, rather than doubling growth that can hold
        // up to three times the data at once while it copies.
        imageData.reserveCapacity(bytes.count)
        var palette: [UInt8]?
        var transparency: [UInt8]?
        var skippedChunks: [String] = []
        var imageDataState = 0  // 0 none yet, 1 inside the IDAT run, 2 after it
        var offset = 8

        while true {
            guard bytes.count - offset >= 12 else { throw .truncated }
            let length = Int(readBigEndian(bytes, at: offset))
            let typeBytes = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 8)])
            let name = String(decoding: typeBytes, as: UTF8.self)
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw .invalidChunk(chunk: printable(typeBytes), reason: "chunk type is not four ASCII letters")
            }
            guard length <= Int(Int32.max) else { throw .invalidChunk(chunk: name, reason: "length exceeds 2³¹−1") }
            guard bytes.count - offset - 12 >= length else { throw .truncated }
            let data = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + 8 + length)])
            let storedCRC = readBigEndian(bytes, at: offset + 8 + length)
            let computedCRC = CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 8 + length)]))
            // Bit 5 of the first type byte set: ancillary, safe to ignore.
            let isAncillary = typeBytes[0] & 0x20 != 0
            guard storedCRC == computedCRC || isAncillary else { throw .crcMismatch(chunk: name) }
            offset += 12 + length

            if header == nil && name != "IHDR" { throw .missingChunk("IHDR") }
            if imageDataState == 1 && name != "IDAT" { imageDataState = 2 }
            if storedCRC != computedCRC {
                // Listed up to a bound, so a file of nothing but bad chunks cannot grow the list
                // beyond its own size.
                if skippedChunks.count < PNGDecoder.maximumSkippedChunkNames { skippedChunks.append(name) }
                continue
            }

            switch name {
            case "IHDR":
                guard header == nil else { throw .misplacedChunk("IHDR") }
                header = try readHeader(data, maximumPixelCount: maximumPixelCount)
            case "PLTE":
                guard palette == nil, imageDataState == 0, transparency == nil else { throw .misplacedChunk("PLTE") }
                guard length % 3 == 0, length >= 3, length <= 768 else {
                    throw .invalidPalette("length \(length) is not 3 to 768 bytes in whole RGB triplets")
                }
                palette = Array(data)
            case "tRNS":
                guard transparency == nil, imageDataState == 0 else { throw .misplacedChunk("tRNS") }
                transparency = Array(data)
            case "IDAT":
                guard imageDataState != 2 else { throw .misplacedChunk("IDAT") }
                imageDataState = 1
                imageData.append(contentsOf: data)
            case "IEND":
                guard let header else { throw .missingChunk("IHDR") }
                guard imageDataState != 0 else { throw .missingChunk("IDAT") }
                return try validate(Contents(
                    header: header, imageData: imageData, palette: palette ?? [], transparency: transparency,
                    skippedChunks: skippedChunks
                ))
            default:
                // A critical chunk we do not know cannot be skipped.
                guard isAncillary else { throw .unknownCriticalChunk(name) }
            }
        }
    }

    private static func readHeader(_ data: UnsafeRawBufferPointer, maximumPixelCount: Int) throws(PNGError) -> PNGHeader {
        guard data.count == 13 else { throw .invalidHeader("length is \(data.count), not 13") }
        let width = Int(readBigEndian(data, at: 0))
        let height = Int(readBigEndian(data, at: 4))
        let bitDepth = Int(data[8])
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw .invalidHeader("dimensions \(width)×\(height) are not between 1 and 2³¹−1")
        }
        guard let colorType = PNGColorType(rawValue: data[9]) else { throw .invalidHeader("colour type \(data[9])") }
        guard colorType.allows(bitDepth: bitDepth) else {
            throw .invalidHeader("bit depth \(bitDepth) is not allowed for colour type \(colorType.rawValue)")
        }
        guard data[10] == 0 else { throw .invalidHeader("compression method \(data[10])") }
        guard data[11] == 0 else { throw .invalidHeader("filter method \(data[11])") }
        guard data[12] <= 1 else { throw .invalidHeader("interlace method \(data[12])") }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maximumPixelCount else { throw .imageTooLarge(width: width, height: height) }
        return PNGHeader(width: width, height: height, bitDepth: bitDepth, colorType: colorType, isInterlaced: data[12] == 1)
    }

    private static func validate(_ contents: Contents) throws(PNGError) -> Contents {
        let header = contents.header
        // Refuse, before anything is allocated for pixels, a header that claims more scanline
        // bytes than the compressed data could possibly inflate to.
        let compressed = contents.imageData.count
        let scanlineBytes = header.scanlineByteCount ?? Int.max
        let (possible, overflow) = compressed.multipliedReportingOverflow(by: PNGDecoder.maximumInflateRatio)
        guard overflow || scanlineBytes <= possible else {
            throw .insufficientImageData(compressedByteCount: compressed, scanlineByteCount: scanlineBytes)
        }
        let paletteEntries = contents.palette.count / 3
        if header.colorType == .indexed {
            guard paletteEntries > 0 else { throw .missingChunk("PLTE") }
        }
        guard let transparency = contents.transparency else { return contents }
        switch header.colorType {
        case .grayscale:
            guard transparency.count == 2 else { throw .invalidTransparency("gray key is \(transparency.count) bytes, not 2") }
        case .truecolor:
            guard transparency.count == 6 else { throw .invalidTransparency("RGB key is \(transparency.count) bytes, not 6") }
        case .indexed:
            guard transparency.count <= paletteEntries else {
                throw .invalidTransparency("\(transparency.count) alpha values for \(paletteEntries) palette entries")
            }
        case .grayscaleAlpha, .truecolorAlpha:
            // Not allowed with an alpha channel; harmless, so ignored as libpng does.
            var contents = contents
            contents.transparency = nil
            return contents
        }
        return contents
    }

    private static func readBigEndian(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    private static func printable(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x\(String($0, radix: 16))" }.joined()
    }
}

extension PNGDecoder {
    static func makeLookupTable(_ contents: ChunkReader.Contents) -> [UInt32] {
        let header = contents.header
        let transparency = contents.transparency ?? []
        func rgba(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8) -> UInt32 {
            (UInt32(r) | UInt32(g) << 8 | UInt32(b) << 16 | UInt32(a) << 24).littleEndian
        }
        switch header.colorType {
        case .indexed:
            // Indices past the palette decode as opaque black, as libpng and Pillow do.
            return (0..<256).map { index in
                guard index * 3 + 2 < contents.palette.count else { return rgba(0, 0, 0, 255) }
                let alpha = index < transparency.count ? transparency[index] : 255
                return rgba(contents.palette[index * 3], contents.palette[index * 3 + 1], contents.palette[index * 3 + 2], alpha)
            }
        case .grayscale where header.bitDepth <= 8:
            let maximum = (1 << header.bitDepth) - 1
            let key = transparency.count == 2 ? Int(transparency[0]) << 8 | Int(transparency[1]) : -1
            return (0...maximum).map { value in
                let gray = UInt8(value * 255 / maximum)
                return rgba(gray, gray, gray, value == key ? 0 : 255)
            }
        default:
            return []
        }
    }

    static func makeColorKey(_ contents: ChunkReader.Contents) -> ColorKey? {
        guard let t = contents.transparency else { return nil }
        func sample(_ i: Int) -> UInt16 { UInt16(t[i]) << 8 | UInt16(t[i + 1]) }
        switch contents.header.colorType {
        case .grayscale where contents.header.bitDepth == 16:
            return ColorKey(red: sample(0), green: 0, blue: 0)
        case .truecolor:
            return ColorKey(red: sample(0), green: sample(2), blue: sample(4))
        default:
            return nil
        }
    }
}
