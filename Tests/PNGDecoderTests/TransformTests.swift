import Foundation
import PNGDecoder
import Testing

/// Crops and scales applied during decoding against a plain reference applied to the full decode.
@Suite("Crop and scale")
struct TransformTests {
    /// The transform's contract, computed the slow, obvious way from a full RGBA8 decode.
    static func reference(_ full: [UInt8], width: Int, transform: PNGTransform, imageHeight: Int) -> [UInt8] {
        let crop = transform.crop ?? PNGRect(x: 0, y: 0, width: width, height: imageHeight)
        let outputWidth = transform.outputWidth ?? crop.width
        let outputHeight = transform.outputHeight ?? crop.height
        var output: [UInt8] = []
        output.reserveCapacity(outputWidth * outputHeight * 4)
        for oy in 0..<outputHeight {
            for ox in 0..<outputWidth {
                let rows: Range<Int>
                let columns: Range<Int>
                if transform.filter == .nearest || (outputWidth == crop.width && outputHeight == crop.height) {
                    let sy = outputHeight == crop.height ? oy : (2 * oy + 1) * crop.height / (2 * outputHeight)
                    let sx = outputWidth == crop.width ? ox : (2 * ox + 1) * crop.width / (2 * outputWidth)
                    rows = sy..<sy + 1
                    columns = sx..<sx + 1
                } else {
                    let y0 = oy * crop.height / outputHeight
                    let x0 = ox * crop.width / outputWidth
                    rows = y0..<max(y0 + 1, (oy + 1) * crop.height / outputHeight)
                    columns = x0..<max(x0 + 1, (ox + 1) * crop.width / outputWidth)
                }
                for channel in 0..<4 {
                    var sum = 0
                    for y in rows {
                        for x in columns { sum += Int(full[((crop.y + y) * width + crop.x + x) * 4 + channel]) }
                    }
                    let count = rows.count * columns.count
                    output.append(UInt8((sum + count / 2) / count))
                }
            }
        }
        return output
    }

    static let transforms: [PNGTransform] = [
        .identity,
        PNGTransform(crop: PNGRect(x: 3, y: 5, width: 40, height: 31)),
        PNGTransform(outputWidth: 37, outputHeight: 23, filter: .box),
        PNGTransform(outputWidth: 37, outputHeight: 23, filter: .nearest),
        PNGTransform(crop: PNGRect(x: 10, y: 2, width: 50, height: 40), outputWidth: 125, outputHeight: 97, filter: .box),
        PNGTransform(crop: PNGRect(x: 10, y: 2, width: 50, height: 40), outputWidth: 125, outputHeight: 97, filter: .nearest),
        PNGTransform(crop: PNGRect(x: 1, y: 1, width: 7, height: 60), outputWidth: 3, outputHeight: 200, filter: .box),
        PNGTransform(crop: PNGRect(x: 0, y: 0, width: 1, height: 1), outputWidth: 4, outputHeight: 3, filter: .box),
        PNGTransform(outputWidth: 1, outputHeight: 1, filter: .box),
    ]

    private func check(_ bytes: [UInt8], label: String) throws {
        let decoder = try PNGDecoder(bytes: bytes)
        let full = try decoder.decode()
        for transform in Self.transforms {
            let actual = try decoder.decode(transform: transform)
            #expect(actual.count == decoder.outputByteCount(for: transform))
            let expected = Self.reference(full, width: decoder.width, transform: transform, imageHeight: decoder.height)
            let difference = firstDifference(actual, expected, width: transform.outputWidth ?? transform.crop?.width ?? decoder.width)
            #expect(difference == nil, "\(label), \(transform): \(difference ?? "")")
        }
    }

    @Test("on a photograph", arguments: ["chelsea.png", "camera.png"])
    func photograph(name: String) throws {
        try check(Fixtures.bytes(of: Fixtures.photosDirectory.appendingPathComponent(name)), label: name)
    }

    @Test("on interlaced and non-interlaced images of odd size", arguments: [false, true])
    func synthetic(interlaced: Bool) throws {
        let png = StoredPNGWriter.make(width: 67, height: 61, interlaced: interlaced) { x, y in
            (UInt8(x * 3 & 0xFF), UInt8(y * 5 & 0xFF), UInt8((x * y) & 0xFF), UInt8((x + y * 7) & 0xFF))
        }
        try check(png, label: interlaced ? "Adam7" : "sequential")
    }

    @Test("the scaled decode of a photograph averages real pixels")
    func halfSize() throws {
        let decoder = try PNGDecoder(bytes: Fixtures.bytes(of: Fixtures.photosDirectory.appendingPathComponent("camera.png")))
        let full = try decoder.decode()
        let half = try decoder.decode(transform: PNGTransform(outputWidth: decoder.width / 2, outputHeight: decoder.height / 2))
        // Output pixel (10, 20) is the rounded mean of the 2×2 block at (20, 40).
        var sum = 0
        for (x, y) in [(20, 40), (21, 40), (20, 41), (21, 41)] { sum += Int(full[(y * decoder.width + x) * 4]) }
        #expect(Int(half[(20 * decoder.width / 2 + 10) * 4]) == (sum + 2) / 4)
    }

    @Test("decode(into:) writes only the output bytes of a larger buffer, and rejects a smaller one")
    func destinationBounds() throws {
        let decoder = try PNGDecoder(bytes: Fixtures.smallInterlaced)
        let transform = PNGTransform(crop: PNGRect(x: 2, y: 1, width: 5, height: 4), outputWidth: 3, outputHeight: 2)
        let count = decoder.outputByteCount(for: transform)
        #expect(count == 3 * 2 * 4)
        var buffer = [UInt8](repeating: 0xAB, count: count + 16)
        try buffer.withUnsafeMutableBytes { try decoder.decode(into: $0, transform: transform) }
        #expect(buffer[count...].allSatisfy { $0 == 0xAB })
        #expect(Array(buffer[..<count]) == (try decoder.decode(transform: transform)))

        var small = [UInt8](repeating: 0, count: count - 1)
        #expect(throws: PNGError.destinationTooSmall(required: count, actual: count - 1)) {
            try small.withUnsafeMutableBytes { try decoder.decode(into: $0, transform: transform) }
        }
    }

    @Test("invalid transforms throw", arguments: [
        PNGTransform(crop: PNGRect(x: -1, y: 0, width: 2, height: 2)),
        PNGTransform(crop: PNGRect(x: 0, y: 0, width: 13, height: 2)),
        PNGTransform(crop: PNGRect(x: 11, y: 8, width: 2, height: 2)),
        PNGTransform(crop: PNGRect(x: 0, y: 0, width: 0, height: 2)),
        PNGTransform(crop: PNGRect(x: Int.max, y: 0, width: Int.max, height: 2)),
        PNGTransform(outputWidth: 0, outputHeight: 5),
        PNGTransform(outputWidth: -3, outputHeight: 5),
    ])
    func invalidTransform(transform: PNGTransform) throws {
        let decoder = try PNGDecoder(bytes: Fixtures.smallInterlaced)
        #expect(decoder.outputByteCount(for: transform) == 0)
        #expect {
            _ = try decoder.decode(transform: transform)
        } throws: { error in
            if case .invalidTransform = error as? PNGError { return true }
            return false
        }
    }

    @Test("an output larger than the pixel limit throws imageTooLarge")
    func outputTooLarge() throws {
        let decoder = try PNGDecoder(bytes: Fixtures.smallInterlaced, maximumPixelCount: 10_000)
        #expect(throws: PNGError.imageTooLarge(width: 1000, height: 1000)) {
            _ = try decoder.decode(transform: PNGTransform(outputWidth: 1000, outputHeight: 1000))
        }
        #expect(throws: PNGError.imageTooLarge(width: Int.max, height: 2)) {
            _ = try decoder.decode(transform: PNGTransform(outputWidth: Int.max, outputHeight: 2))
        }

        // With no pixel limit, an output whose byte count (4 per pixel) overflows Int is still
        // an error, not a trap.
        let unlimited = try PNGDecoder(bytes: Fixtures.smallInterlaced, maximumPixelCount: .max)
        let huge = PNGTransform(outputWidth: Int.max / 2, outputHeight: 2)
        #expect(unlimited.outputByteCount(for: huge) == 0)
        #expect(throws: PNGError.imageTooLarge(width: Int.max / 2, height: 2)) {
            _ = try unlimited.decode(transform: huge)
        }
    }
}
