/// A defect found while inflating the zlib stream that holds a PNG's image data.
public enum InflateError: Error, Sendable, Hashable {
    /// The two-byte zlib header is malformed, uses a method other than deflate, or asks for a preset dictionary.
    case invalidZlibHeader
    /// The stream ends before its final block and Adler-32 trailer.
    case unexpectedEndOfStream
    /// A block header has the reserved block type 3.
    case invalidBlockType
    /// A stored block's length and its one's complement disagree.
    case storedLengthMismatch
    /// A dynamic block's code lengths describe an impossible or unusable Huffman code.
    case invalidHuffmanTable
    /// The bits do not form a code of the current Huffman table, or name a reserved symbol.
    case invalidSymbol
    /// A back-reference points before the start of the output.
    case distanceTooFarBack
    /// The decompressed data does not match the stream's Adler-32 checksum.
    case checksumMismatch
    /// The stream ends before it has produced all the scanlines the header announces.
    case notEnoughData
}

extension InflateError: CustomStringConvertible {
    /// A one-line, human-readable description of the defect.
    public var description: String {
        switch self {
        case .invalidZlibHeader: "invalid zlib header"
        case .unexpectedEndOfStream: "zlib stream ends early"
        case .invalidBlockType: "invalid deflate block type"
        case .storedLengthMismatch: "stored block length does not match its complement"
        case .invalidHuffmanTable: "invalid Huffman code lengths"
        case .invalidSymbol: "invalid Huffman code"
        case .distanceTooFarBack: "back-reference distance too far back"
        case .checksumMismatch: "Adler-32 checksum mismatch"
        case .notEnoughData: "image data ends before the last scanline"
        }
    }
}
