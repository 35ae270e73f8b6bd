/// The seven passes of Adam7 interlacing (PNG specification §8.2).
struct Adam7Pass {
    let xStart: Int, yStart: Int, xStep: Int, yStep: Int

    static let all: [Adam7Pass] = [
        Adam7Pass(xStart: 0, yStart: 0, xStep: 8, yStep: 8),
        Adam7Pass(xStart: 4, yStart: 0, xStep: 8, yStep: 8),
        Adam7Pass(xStart: 0, yStart: 4, xStep: 4, yStep: 8),
        Adam7Pass(xStart: 2, yStart: 0, xStep: 4, yStep: 4),
        Adam7Pass(xStart: 0, yStart: 2, xStep: 2, yStep: 4),
        Adam7Pass(xStart: 1, yStart: 0, xStep: 2, yStep: 2),
        Adam7Pass(xStart: 0, yStart: 1, xStep: 1, yStep: 2),
    ]

    /// The pass's width for an image `width` pixels wide (0 when the pass is empty).
    func width(forImageWidth width: Int) -> Int { width > xStart ? (width - xStart + xStep - 1) / xStep : 0 }
    /// The pass's height for an image `height` pixels high (0 when the pass is empty).
    func height(forImageHeight height: Int) -> Int { height > yStart ? (height - yStart + yStep - 1) / yStep : 0 }
}

extension PNGDecoder {
    /// Decodes an interlaced image: each pass's pixels inside the crop are scattered into an RGBA8
    /// image of the crop's size, which is the destination itself when the transform does not scale
    /// and a temporary buffer otherwise; the latter then goes through `sink` row by row.
    func decodeInterlaced(inflater: inout Inflater, converter: RowConverter, sink: inout RowResampler) throws(PNGError) {
        let crop = sink.transform.crop
        let scaling = sink.transform.isScaling
        let canvas: UnsafeMutablePointer<UInt8> =
            scaling ? .allocate(capacity: crop.width * crop.height * 4) : sink.rowBuffer(forSourceRow: crop.y)
        defer { if scaling { canvas.deallocate() } }

        var scanlines = ScanlinePair(rowByteCount: header.rowByteCount(width: width))
        let passRow = UnsafeMutablePointer<UInt8>.allocate(capacity: (width + 1) / 2 * 4 + 4)
        defer { passRow.deallocate() }

        for pass in Adam7Pass.all {
            let passWidth = pass.width(forImageWidth: width)
            let passHeight = pass.height(forImageHeight: height)
            guard passWidth > 0, passHeight > 0 else { continue }
            scanlines.startPass(rowByteCount: header.rowByteCount(width: passWidth))
            // The pass columns that fall inside the crop: xStart + i·xStep ∈ [crop.x, crop.x + crop.width).
            let firstColumn = max(0, (crop.x - pass.xStart + pass.xStep - 1) / pass.xStep)
            let endColumn = min(passWidth, (crop.x + crop.width - pass.xStart + pass.xStep - 1) / pass.xStep)
            for passY in 0..<passHeight {
                try scanlines.readNext(from: &inflater, row: passY, stride: header.filterStride)
                let y = pass.yStart + passY * pass.yStep
                guard y >= crop.y, y < crop.y + crop.height, firstColumn < endColumn else { continue }
                // Pass 7 has full-width rows but pass 6 has half-width ones: passRow fits the widest
                // pass that can reach this point, (width + 1) / 2, except pass 7 (step 1), which
                // converts straight into the canvas row.
                let canvasRow = canvas + (y - crop.y) * crop.width * 4
                if pass.xStep == 1 {
                    converter.convert(scanlines.current, from: crop.x, count: crop.width, to: canvasRow)
                    continue
                }
                let count = endColumn - firstColumn
                converter.convert(scanlines.current, from: firstColumn, count: count, to: passRow)
                let source = UnsafeRawPointer(passRow)
                let target = UnsafeMutableRawPointer(canvasRow)
                var x = pass.xStart + firstColumn * pass.xStep - crop.x
                for i in 0..<count {
                    target.storeBytes(of: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self), toByteOffset: x * 4, as: UInt32.self)
                    x += pass.xStep
                }
            }
        }

        if scaling {
            for y in crop.y..<(crop.y + crop.height) {
                sink.rowBuffer(forSourceRow: y).update(from: canvas + (y - crop.y) * crop.width * 4, count: crop.width * 4)
                sink.commit(sourceRow: y)
            }
        }
    }
}
