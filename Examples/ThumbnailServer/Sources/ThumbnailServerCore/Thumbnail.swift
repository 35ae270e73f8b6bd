public import PNGDecoder

/// Which thumbnail: a photo (by its index in the ``PhotoStore``) at an output size.
public struct ThumbnailKey: Hashable, Sendable, CustomStringConvertible {
    /// The photo's index in ``PhotoStore/photos``.
    public var photo: Int
    /// Output width in pixels, 1 to ``Thumbnail/maximumEdge``.
    public var width: Int
    /// Output height in pixels, 1 to ``Thumbnail/maximumEdge``.
    public var height: Int

    /// Creates a key.
    /// - Parameters:
    ///   - photo: The photo's index.
    ///   - width: The output width.
    ///   - height: The output height.
    public init(photo: Int, width: Int, height: Int) {
        self.photo = photo
        self.width = width
        self.height = height
    }

    /// "photo 3 at 256x192".
    public var description: String { "photo \(photo) at \(width)x\(height)" }
}

/// A thumbnail as sent on the wire: an uncompressed 32-bit BMP whose pixel array is the PNG
/// decoder's RGBA8 output as is.
///
/// Why BMP: browsers show it (PPM/PAM they do not), and image tools read it. With a
/// `BITMAPV4HEADER`, `BI_BITFIELDS` masks that put red, green, blue and alpha in bytes 0 to 3,
/// and a negative height (rows top-down), the decoder's top-down RGBA8 rows *are* the pixel
/// array: rows of 4-byte pixels need no padding. So the cached object is the whole response body,
/// written once by the decoder straight into cache memory, and a hit is one copy into the response
/// buffer with no per-request conversion.
///
/// ```text
///   0  "BM"  file size  0  0  pixel offset (122)              BITMAPFILEHEADER, 14 bytes
///  14  108  width  -height  1  32  BI_BITFIELDS  image size  2835  2835  0  0
///      masks R 0x000000FF  G 0x0000FF00  B 0x00FF0000  A 0xFF000000  'sRGB'  (unused 48 bytes)
/// 122  RGBA8 pixels, width × height × 4 bytes, top row first
/// ```
public enum Thumbnail {
    /// The largest width and height a request may ask for (a 16 MiB thumbnail).
    public static let maximumEdge = 2048
    /// Bytes before the pixels: file header (14) and `BITMAPV4HEADER` (108).
    public static let headerByteCount = 122
    /// The most a response copies out of a thumbnail at once: larger thumbnails stream in chunks
    /// of this size, so a response in flight holds about one chunk, not a whole copy.
    public static let chunkByteCount = 128 << 10
    /// The response's media type.
    public static let mediaType = "image/bmp"

    /// The body's byte count for a thumbnail of `width` × `height`.
    /// - Parameters:
    ///   - width: The width in pixels.
    ///   - height: The height in pixels.
    /// - Returns: Header plus pixels.
    public static func byteCount(width: Int, height: Int) -> Int {
        headerByteCount + width * height * 4
    }

    /// The transform that decodes `key`'s photo at its size: the whole photo, box-filtered
    /// (an area average when shrinking).
    /// - Parameter key: The thumbnail.
    /// - Returns: The decoder's transform.
    public static func transform(for key: ThumbnailKey) -> PNGTransform {
        PNGTransform(crop: nil, outputWidth: key.width, outputHeight: key.height, filter: .box)
    }

    /// Writes the BMP headers for a `width` × `height` image into the first
    /// ``headerByteCount`` bytes of `buffer`.
    /// - Parameters:
    ///   - width: The width in pixels.
    ///   - height: The height in pixels.
    ///   - buffer: At least ``headerByteCount`` bytes. Do not escape the pointer.
    public static func writeHeader(width: Int, height: Int, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= headerByteCount, "BMP header needs \(headerByteCount) bytes")
        let imageBytes = width * height * 4
        var offset = 0
        func put16(_ value: UInt16) {
            buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
            offset += 2
        }
        func put32(_ value: UInt32) {
            buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        // BITMAPFILEHEADER
        put16(0x4D42)  // "BM"
        put32(UInt32(headerByteCount + imageBytes))
        put32(0)  // two reserved 16-bit fields
        put32(UInt32(headerByteCount))
        // BITMAPV4HEADER
        put32(108)
        put32(UInt32(bitPattern: Int32(width)))
        put32(UInt32(bitPattern: Int32(-height)))  // negative: rows top-down, as decoded
        put16(1)  // planes
        put16(32)  // bits per pixel
        put32(3)  // BI_BITFIELDS
        put32(UInt32(imageBytes))
        put32(2835)  // 72 dpi, in pixels per metre
        put32(2835)
        put32(0)  // palette colours used
        put32(0)  // important colours
        put32(0x0000_00FF)  // red mask: byte 0
        put32(0x0000_FF00)  // green: byte 1
        put32(0x00FF_0000)  // blue: byte 2
        put32(0xFF00_0000)  // alpha: byte 3
        put32(0x7352_4742)  // LCS_sRGB ('sRGB')
        while offset < headerByteCount { put32(0) }  // colour-space end points and gammas: unused for sRGB
    }

    /// Writes the whole thumbnail (headers, then the decoded pixels) into `buffer`.
    /// - Parameters:
    ///   - key: The thumbnail.
    ///   - decoder: The photo's decoder.
    ///   - buffer: Exactly ``byteCount(width:height:)`` bytes (or more; the rest is not touched).
    ///     Do not escape the pointer.
    /// - Returns: The bytes written.
    /// - Throws: A `PNGError` from the decoder.
    @discardableResult
    public static func write(_ key: ThumbnailKey, decoder: PNGDecoder, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = byteCount(width: key.width, height: key.height)
        writeHeader(width: key.width, height: key.height, into: buffer)
        try decoder.decode(
            into: UnsafeMutableRawBufferPointer(rebasing: buffer[headerByteCount..<count]),
            transform: transform(for: key))
        return count
    }

    /// Parses a size path component such as `256x192`.
    /// - Parameter text: The component.
    /// - Returns: Width and height, or nil unless both are decimal integers from 1 to
    ///   ``maximumEdge`` written as `WIDTHxHEIGHT`.
    public static func parseSize(_ text: Substring) -> (width: Int, height: Int)? {
        let parts = text.split(separator: "x", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func edge(_ part: Substring) -> Int? {
            // At most 4 digits: no overflow, no signs, no spaces.
            guard (1...4).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(part), (1...maximumEdge).contains(value)
            else { return nil }
            return value
        }
        guard let width = edge(parts[0]), let height = edge(parts[1]) else { return nil }
        return (width, height)
    }
}
