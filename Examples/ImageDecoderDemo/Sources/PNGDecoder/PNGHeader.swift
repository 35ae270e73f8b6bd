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

    /// Bytes of filtered scanlines (filter-type bytes included) the zlib stream must inflate to:
    /// all seven passes for an interlaced image. `nil` if the count overflows `Int`.
    var scanlineByteCount: Int? {
        let passes = isInterlaced ? Adam7Pass.all : [Adam7Pass(xStart: 0, yStart: 0, xStep: 1, yStep: 1)]
        var total = 0
        for pass in passes {
            let passWidth = pass.width(forImageWidth: width)
            let passHeight = pass.height(forImageHeight: height)
            guard passWidth > 0, passHeight > 0 else { continue }
            let (bits, overflow1) = passWidth.multipliedReportingOverflow(by: bitsPerPixel)
            guard !overflow1 else { return nil }
            let (bytes, overflow2) = (bits / 8 + (bits % 8 == 0 ? 0 : 1) + 1).multipliedReportingOverflow(by: passHeight)
            let (sum, overflow3) = total.addingReportingOverflow(bytes)
            guard !overflow2, !overflow3 else { return nil }
            total = sum
        }
        return total
    }
}
