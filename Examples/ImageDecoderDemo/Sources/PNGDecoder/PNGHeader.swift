/// The colour type of a PNG image: how its samples make up a pixel.
public enum PNGColorType: UInt8, Sendable, Hashable, CaseIterable {
    /// One gray sample per pixel.
    case grayscale = 0
    /// Red, green and blue samples.
    case truecolor = 2
    /// One index into the `PLTE` palette.
    case indexed = 3
    /// A gray sample and an alpha sample.
    case grayscaleAlpha = 4
    /// Red, green, blue and alpha samples.
    case truecolorAlpha = 6

    /// The number of samples per pixel.
    public var channelCount: Int {
        switch self {
        case .grayscale, .indexed: 1
        case .grayscaleAlpha: 2
        case .truecolor: 3
        case .truecolorAlpha: 4
        }
    }

    /// Whether the PNG specification allows `bitDepth` for this colour type.
    ///
    /// - Parameter bitDepth: Bits per sample (or per palette index).
    /// - Returns: `true` for the combinations of table 11.1 of the PNG specification.
    public func allows(bitDepth: Int) -> Bool {
        switch self {
        case .grayscale: [1, 2, 4, 8, 16].contains(bitDepth)
        case .indexed: [1, 2, 4, 8].contains(bitDepth)
        case .truecolor, .grayscaleAlpha, .truecolorAlpha: bitDepth == 8 || bitDepth == 16
        }
    }
}

/// The facts of a PNG's `IHDR` chunk that decoding depends on.
public struct PNGHeader: Sendable, Hashable {
    /// Width in pixels, at least 1.
    public let width: Int
    /// Height in pixels, at least 1.
    public let height: Int
    /// Bits per sample: 1, 2, 4, 8 or 16 as the colour type allows.
    public let bitDepth: Int
    /// How samples make up a pixel.
    public let colorType: PNGColorType
    /// Whether the image data is Adam7-interlaced.
    public let isInterlaced: Bool

    /// Bits per pixel in the image data.
    var bitsPerPixel: Int { bitDepth * colorType.channelCount }

    /// The byte distance the filters use to find "the pixel to the left" (at least 1).
    var filterStride: Int { max(1, bitsPerPixel / 8) }

    /// Bytes in one scanline of `width` pixels, without the filter-type byte.
    func rowByteCount(width: Int) -> Int { (width * bitsPerPixel + 7) / 8 }
}
