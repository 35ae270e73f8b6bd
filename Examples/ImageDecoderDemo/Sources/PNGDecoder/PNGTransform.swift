/// A rectangle of pixels, with its origin at the top-left corner of the image.
public struct PNGRect: Sendable, Hashable {
    /// Left edge, in pixels from the image's left edge.
    public var x: Int
    /// Top edge, in pixels from the image's top edge.
    public var y: Int
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int

    /// Creates a rectangle.
    ///
    /// - Parameters:
    ///   - x: Left edge in pixels.
    ///   - y: Top edge in pixels.
    ///   - width: Width in pixels.
    ///   - height: Height in pixels.
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// How a transform resamples its crop to a different output size.
public enum PNGScaleFilter: Sendable, Hashable {
    /// Each output pixel copies the source pixel under its centre: source index
    /// `⌊(2i + 1)·S / 2·O⌋` for output index `i`, source extent `S` and output extent `O`.
    case nearest
    /// Each output pixel is the rounded mean of the source pixels in its footprint, indices
    /// `⌊i·S / O⌋ ..< max(⌊i·S / O⌋ + 1, ⌊(i + 1)·S / O⌋)`: an area average when shrinking, a
    /// pixel replication when enlarging. Colour and alpha are averaged independently (not premultiplied).
    case box
}

/// What part of an image to decode and at what size: a crop rectangle in source pixels, then a
/// resampling of that crop to an output size.
///
/// The transform runs inside ``PNGDecoder/decode(into:transform:)`` as scanlines come out of the
/// inflater, so a cropped or scaled decode never materialises the full image (except for interlaced
/// images, see there).
public struct PNGTransform: Sendable, Hashable {
    /// The source rectangle to decode, or `nil` for the whole image.
    public var crop: PNGRect?
    /// The output width in pixels, or `nil` for the crop's width.
    public var outputWidth: Int?
    /// The output height in pixels, or `nil` for the crop's height.
    public var outputHeight: Int?
    /// The resampling filter, used only when the output size differs from the crop's.
    public var filter: PNGScaleFilter

    /// Creates a transform.
    ///
    /// - Parameters:
    ///   - crop: The source rectangle, or `nil` for the whole image.
    ///   - outputWidth: The output width, or `nil` to keep the crop's width.
    ///   - outputHeight: The output height, or `nil` to keep the crop's height.
    ///   - filter: The resampling filter for a change of size.
    public init(crop: PNGRect? = nil, outputWidth: Int? = nil, outputHeight: Int? = nil, filter: PNGScaleFilter = .box) {
        self.crop = crop
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
        self.filter = filter
    }

    /// The whole image at its own size.
    public static let identity = PNGTransform()
}

/// A transform checked against one image: every field concrete and in range.
struct ResolvedTransform {
    let crop: PNGRect
    let outputWidth: Int
    let outputHeight: Int
    let filter: PNGScaleFilter

    var isScaling: Bool { outputWidth != crop.width || outputHeight != crop.height }
    var isIdentity: Bool { !isScaling && crop.x == 0 && crop.y == 0 }
    var outputByteCount: Int { outputWidth * outputHeight * 4 }

    /// Resolves `transform` for a `width`×`height` image.
    ///
    /// - Throws: ``PNGError/invalidTransform(_:)`` for a crop outside the image or a non-positive
    ///   size; ``PNGError/imageTooLarge(width:height:)`` for an output over `maximumPixelCount`.
    init(_ transform: PNGTransform, width: Int, height: Int, maximumPixelCount: Int) throws(PNGError) {
        let crop = transform.crop ?? PNGRect(x: 0, y: 0, width: width, height: height)
        guard crop.width > 0, crop.height > 0 else { throw .invalidTransform("empty crop rectangle") }
        guard crop.x >= 0, crop.y >= 0, crop.x <= width - crop.width, crop.y <= height - crop.height else {
            throw .invalidTransform("crop rectangle extends outside the \(width)×\(height) image")
        }
        let outputWidth = transform.outputWidth ?? crop.width
        let outputHeight = transform.outputHeight ?? crop.height
        guard outputWidth > 0, outputHeight > 0 else { throw .invalidTransform("output size must be positive") }
        let (pixels, overflow) = outputWidth.multipliedReportingOverflow(by: outputHeight)
        // Also bounded by what `outputByteCount` (4 bytes a pixel) can count, whatever limit the
        // caller chose.
        guard !overflow, pixels <= maximumPixelCount, pixels <= Int.max / 4 else {
            throw .imageTooLarge(width: outputWidth, height: outputHeight)
        }
        self.crop = crop
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
        self.filter = transform.filter
    }
}
