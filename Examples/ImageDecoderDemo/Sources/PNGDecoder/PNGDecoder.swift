/// A pure-Swift PNG decoder that writes RGBA8 pixels straight into memory the caller owns.
///
/// Decoding takes two steps. ``init(bytes:maximumPixelCount:)`` checks the signature and every
/// chunk's CRC, reads the header, palette and transparency, and gathers the compressed image data;
/// it is cheap and does not inflate anything. ``decode(into:transform:)`` then inflates, unfilters
/// and converts the scanlines, applying a crop and scale on the way, into a buffer you provide.
/// Each call is a full, independent decode, so one value can be decoded many times, concurrently
/// from several tasks.
///
/// ```swift
/// let decoder = try PNGDecoder(bytes: fileBytes)
/// let thumbnail = PNGTransform(outputWidth: 128, outputHeight: 128)
/// var pixels = [UInt8](repeating: 0, count: decoder.outputByteCount(for: thumbnail))
/// try pixels.withUnsafeMutableBytes { try decoder.decode(into: $0, transform: thumbnail) }
/// ```
///
/// Every colour type and bit depth of the PNG specification is supported, with `tRNS`
/// transparency and Adam7 interlacing. Output is always 8-bit RGBA, not premultiplied; 16-bit
/// samples keep their high byte, as libpng and Pillow do when reducing to 8 bits. Ancillary chunks
/// other than `tRNS` (gamma, colour profiles, text) are checked and skipped.
///
/// ## Limits on hostile input
///
/// The work and memory a file can ask for are bounded by what it holds:
/// - The image may have at most `maximumPixelCount` pixels (by default
///   ``defaultMaximumPixelCount``), checked when the header is read.
/// - The compressed image data must be able to hold every scanline the header announces at
///   deflate's maximum ratio, ``maximumInflateRatio`` (1032:1); otherwise ``init(bytes:maximumPixelCount:)``
///   throws ``PNGError/insufficientImageData(compressedByteCount:scanlineByteCount:)`` before
///   anything is allocated, so a 69-byte file cannot claim a gigabyte image.
/// - Decoding stops inflating once the last scanline is complete. The rest of the zlib stream is
///   inflated, and its Adler-32 checksum checked, only if it ends within ``trailingOutputLimit``
///   bytes of output (a well-formed file ends at once); data past that is not verified, as libpng
///   and Pillow do not verify it either.
/// - Besides the output, a decode allocates a 64 KiB inflate window, two scanlines, and for an
///   interlaced image that it scales, one RGBA8 copy of the crop rectangle: at most about 26 bytes
///   per image pixel plus 66 KiB, and when scaling, 48 bytes per output column. The fuzz target
///   (`Examples/ImageDecoderDemo/Fuzz`) checks 64 bytes per pixel plus 256 KiB on every input.
/// - An ancillary chunk with a bad CRC is skipped and listed in ``skippedChunks``.
public struct PNGDecoder: Sendable {
    /// The largest image, in pixels, a decoder accepts unless told otherwise: 2²⁷ (128 Mi) pixels,
    /// 512 MiB of RGBA8.
    public static let defaultMaximumPixelCount = 1 << 27

    /// How far past the last scanline a decode inflates to reach the zlib stream's end and check
    /// its Adler-32 checksum: 64 KiB of output. A longer tail is neither inflated nor verified.
    public static let trailingOutputLimit = 1 << 16

    /// The most bytes one compressed byte of deflate data can inflate to: a length-258 match
    /// coded in two bits (a 1-bit length code and a 1-bit distance code) makes 1032 bytes a byte.
    public static let maximumInflateRatio = 1032

    /// The image's header.
    public let header: PNGHeader

    /// The ancillary chunks that were skipped because their CRC did not match, in file order.
    ///
    /// As libpng and Rust's `png` crate do, a bad CRC in an ancillary chunk (lower-case first letter,
    /// such as `iCCP`, `cLLI`, `tEXt`, and also `tRNS`) skips that chunk instead of rejecting the
    /// file; a bad CRC in a critical chunk (`IHDR`, `PLTE`, `IDAT`, `IEND`) throws
    /// ``PNGError/crcMismatch(chunk:)``. At most ``maximumSkippedChunkNames`` names are kept.
    public let skippedChunks: [String]

    /// How many names ``skippedChunks`` keeps: 32.
    public static let maximumSkippedChunkNames = 32

    /// The largest width × height this decoder accepts for the image and for a transform's output.
    public let maximumPixelCount: Int

    /// The payloads of all `IDAT` chunks, concatenated: one zlib stream.
    let imageData: [UInt8]

    /// For gray images up to 8 bits and indexed images: the RGBA8 pixel of every sample value,
    /// transparency applied, as little-endian `UInt32`s. Empty otherwise.
    let lookupTable: [UInt32]

    /// For 16-bit gray and for RGB images with a `tRNS` chunk: the sample values that mean
    /// "transparent" (gray uses `red`).
    let colorKey: ColorKey?

    struct ColorKey: Sendable, Hashable {
        var red: UInt16
        var green: UInt16
        var blue: UInt16
    }

    /// The image width in pixels.
    public var width: Int { header.width }

    /// The image height in pixels.
    public var height: Int { header.height }

    /// Reads the structure of a PNG file held in an array.
    ///
    /// - Parameters:
    ///   - bytes: The complete PNG file.
    ///   - maximumPixelCount: The largest width × height to accept, for the image and for any
    ///     transform's output; larger images throw ``PNGError/imageTooLarge(width:height:)``.
    /// - Throws: ``PNGError`` if the file is not a PNG, is truncated, fails a critical chunk's CRC
    ///   check, has an invalid header, palette or transparency chunk, or has too little compressed
    ///   image data for the size its header announces.
    /// - Complexity: O(*n*) in the size of the file (CRC checks and one copy of the image data).
    public init(bytes: [UInt8], maximumPixelCount: Int = PNGDecoder.defaultMaximumPixelCount) throws(PNGError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(PNGError) in try PNGDecoder(bytes: raw, maximumPixelCount: maximumPixelCount) }
        }
        self = try result.get()
    }

    /// Reads the structure of a PNG file held in raw memory.
    ///
    /// The decoder copies what it needs; `bytes` may be freed once this returns.
    ///
    /// - Parameters:
    ///   - bytes: The complete PNG file.
    ///   - maximumPixelCount: The largest width × height to accept, for the image and for any
    ///     transform's output; larger images throw ``PNGError/imageTooLarge(width:height:)``.
    /// - Throws: ``PNGError`` if the file is not a PNG, is truncated, fails a critical chunk's CRC
    ///   check, has an invalid header, palette or transparency chunk, or has too little compressed
    ///   image data for the size its header announces.
    /// - Complexity: O(*n*) in the size of the file (CRC checks and one copy of the image data).
    public init(bytes: UnsafeRawBufferPointer, maximumPixelCount: Int = PNGDecoder.defaultMaximumPixelCount) throws(PNGError) {
        let contents = try ChunkReader.read(bytes, maximumPixelCount: maximumPixelCount)
        self.header = contents.header
        self.skippedChunks = contents.skippedChunks
        self.maximumPixelCount = maximumPixelCount
        self.imageData = contents.imageData
        self.lookupTable = Self.makeLookupTable(contents)
        self.colorKey = Self.makeColorKey(contents)
    }

    /// The number of bytes ``decode(into:transform:)`` writes for `transform`: output width ×
    /// output height × 4.
    ///
    /// - Parameter transform: The crop and scale to apply.
    /// - Returns: The byte count, or 0 if `transform` is invalid for this image (decoding with it
    ///   would throw).
    public func outputByteCount(for transform: PNGTransform = .identity) -> Int {
        guard let resolved = try? ResolvedTransform(transform, width: width, height: height, maximumPixelCount: maximumPixelCount) else {
            return 0
        }
        return resolved.outputByteCount
    }

    /// Decodes the image, cropped and scaled by `transform`, into `destination` as RGBA8 rows
    /// (row-major, 4 bytes per pixel, no padding).
    ///
    /// Every call inflates and unfilters all the scanlines and checks the Adler-32 checksum when
    /// the stream ends within ``trailingOutputLimit`` bytes after them, but converts only the rows
    /// and columns inside the crop. A non-interlaced image needs only a
    /// few scanlines of scratch memory. An Adam7-interlaced image scatters its seven passes into
    /// `destination` when the transform does not scale; when it scales, it first decodes the crop
    /// rectangle into a temporary RGBA8 buffer (crop width × crop height × 4 bytes).
    ///
    /// On a thrown error, `destination` holds partial output.
    ///
    /// - Parameters:
    ///   - destination: Memory for at least ``outputByteCount(for:)`` bytes. Bytes past that are not touched.
    ///   - transform: The crop and scale to apply; by default the whole image at its own size.
    /// - Throws: ``PNGError/destinationTooSmall(required:actual:)``,
    ///   ``PNGError/invalidTransform(_:)`` or ``PNGError/imageTooLarge(width:height:)`` for bad
    ///   arguments; ``PNGError/inflate(_:)`` or ``PNGError/invalidFilter(type:row:)`` for corrupt image data.
    /// - Complexity: O(*n* + *m*) for *n* image pixels and *m* output pixels, plus the crop's area when scaling with ``PNGScaleFilter/box``.
    public func decode(into destination: UnsafeMutableRawBufferPointer, transform: PNGTransform = .identity) throws(PNGError) {
        let resolved = try ResolvedTransform(transform, width: width, height: height, maximumPixelCount: maximumPixelCount)
        let required = resolved.outputByteCount
        guard destination.count >= required, let base = destination.baseAddress else {
            throw .destinationTooSmall(required: required, actual: destination.count)
        }
        let output = base.assumingMemoryBound(to: UInt8.self)
        let result = imageData.withUnsafeBytes { compressed in
            lookupTable.withUnsafeBufferPointer { lookup in
                Result { () throws(PNGError) in
                    var inflater = Inflater(input: compressed)
                    var sink = RowResampler(transform: resolved, destination: output)
                    let converter = RowConverter(header: header, lookup: lookup, colorKey: colorKey)
                    if header.isInterlaced {
                        try decodeInterlaced(inflater: &inflater, converter: converter, sink: &sink)
                    } else {
                        try decodeSequential(inflater: &inflater, converter: converter, sink: &sink)
                    }
                    do throws(InflateError) {
                        _ = try inflater.finish(trailingOutputLimit: Self.trailingOutputLimit)
                    } catch {
                        throw .inflate(error)
                    }
                }
            }
        }
        try result.get()
    }

    /// Decodes the image, cropped and scaled by `transform`, into a new array of RGBA8 pixels.
    ///
    /// - Parameter transform: The crop and scale to apply; by default the whole image at its own size.
    /// - Returns: ``outputByteCount(for:)`` bytes of RGBA8 pixels, row-major, no padding.
    /// - Throws: The errors of ``decode(into:transform:)``.
    /// - Complexity: The complexity of ``decode(into:transform:)``.
    public func decode(transform: PNGTransform = .identity) throws(PNGError) -> [UInt8] {
        let resolved = try ResolvedTransform(transform, width: width, height: height, maximumPixelCount: maximumPixelCount)
        var pixels = [UInt8](repeating: 0, count: resolved.outputByteCount)
        let result = pixels.withUnsafeMutableBytes { raw in
            Result { () throws(PNGError) in try decode(into: raw, transform: transform) }
        }
        try result.get()
        return pixels
    }

    /// Inflates, unfilters and converts the scanlines of a non-interlaced image.
    private func decodeSequential(inflater: inout Inflater, converter: RowConverter, sink: inout RowResampler) throws(PNGError) {
        let rowBytes = header.rowByteCount(width: width)
        var scanlines = ScanlinePair(rowByteCount: rowBytes)
        let crop = sink.transform.crop
        for y in 0..<height {
            try scanlines.readNext(from: &inflater, row: y, stride: header.filterStride)
            // Rows past the crop are still unfiltered: the Adler-32 check needs the whole stream,
            // and a bad filter byte should fail the same way whatever the transform.
            if y >= crop.y && y < crop.y + crop.height {
                converter.convert(scanlines.current, from: crop.x, count: crop.width, to: sink.rowBuffer(forSourceRow: y))
                sink.commit(sourceRow: y)
            }
        }
    }
}
