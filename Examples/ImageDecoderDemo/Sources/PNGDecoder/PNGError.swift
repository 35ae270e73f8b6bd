/// An error thrown while reading or decoding a PNG image.
///
/// Every way a file can be corrupt, truncated or unsupported maps to one of these cases; the decoder
/// never traps on bad input.
public enum PNGError: Error, Sendable, Hashable {
    /// The data does not start with the 8-byte PNG signature.
    case badSignature
    /// The data ends in the middle of a chunk, or before the `IEND` chunk.
    case truncated
    /// A chunk's stored CRC-32 does not match its type and data.
    case crcMismatch(chunk: String)
    /// A chunk is malformed: bad type code, length over 2³¹−1, or wrong size for its type.
    case invalidChunk(chunk: String, reason: String)
    /// The `IHDR` chunk is missing, misplaced or holds values the PNG specification does not allow.
    case invalidHeader(String)
    /// A chunk the image needs (`IHDR`, `IDAT`, `PLTE` for indexed images) is absent.
    case missingChunk(String)
    /// A chunk appears where the PNG specification does not allow it (for example a second `IHDR`,
    /// or `IDAT` chunks that are not consecutive).
    case misplacedChunk(String)
    /// The file has a critical chunk (upper-case first letter) this decoder does not know.
    case unknownCriticalChunk(String)
    /// The `PLTE` chunk is malformed.
    case invalidPalette(String)
    /// The `tRNS` chunk is malformed for the image's colour type.
    case invalidTransparency(String)
    /// The zlib stream in the `IDAT` chunks is corrupt or truncated.
    case inflate(InflateError)
    /// A scanline starts with a filter type other than 0–4.
    case invalidFilter(type: UInt8, row: Int)
    /// The compressed image data is too short to inflate to the scanlines the header announces, even
    /// at deflate's maximum ratio (``PNGDecoder/maximumInflateRatio``): the file is truncated or
    /// claims dimensions it does not hold. Thrown before any pixel memory is allocated.
    case insufficientImageData(compressedByteCount: Int, scanlineByteCount: Int)
    /// The image (or a requested output size) has more pixels than the decoder's limit allows.
    case imageTooLarge(width: Int, height: Int)
    /// The destination buffer cannot hold the decoded pixels.
    case destinationTooSmall(required: Int, actual: Int)
    /// The transform's crop rectangle lies outside the image, or its output size is not positive.
    case invalidTransform(String)
}

extension PNGError: CustomStringConvertible {
    /// A one-line, human-readable description of the error.
    public var description: String {
        switch self {
        case .badSignature: "not a PNG file (bad signature)"
        case .truncated: "PNG data is truncated"
        case .crcMismatch(let chunk): "CRC mismatch in \(chunk) chunk"
        case .invalidChunk(let chunk, let reason): "invalid \(chunk) chunk: \(reason)"
        case .invalidHeader(let reason): "invalid IHDR: \(reason)"
        case .missingChunk(let chunk): "missing \(chunk) chunk"
        case .misplacedChunk(let chunk): "misplaced \(chunk) chunk"
        case .unknownCriticalChunk(let chunk): "unknown critical chunk \(chunk)"
        case .invalidPalette(let reason): "invalid PLTE: \(reason)"
        case .invalidTransparency(let reason): "invalid tRNS: \(reason)"
        case .inflate(let error): "corrupt image data: \(error)"
        case .invalidFilter(let type, let row): "invalid filter type \(type) in row \(row)"
        case .insufficientImageData(let compressed, let scanlines):
            "\(compressed) bytes of compressed image data cannot hold the \(scanlines) bytes of scanlines the header announces"
        case .imageTooLarge(let width, let height): "image of \(width)×\(height) pixels exceeds the decoder's limit"
        case .destinationTooSmall(let required, let actual): "destination holds \(actual) bytes, \(required) needed"
        case .invalidTransform(let reason): "invalid transform: \(reason)"
        }
    }
}
