/// Turns unfiltered scanline bytes of any colour type and bit depth into RGBA8 pixels.
///
/// Holds a pointer into the decoder's lookup table: valid only inside the decode call that made it.
struct RowConverter {
    let header: PNGHeader
    let lookup: UnsafeBufferPointer<UInt32>
    let colorKey: PNGDecoder.ColorKey?

    init(header: PNGHeader, lookup: UnsafeBufferPointer<UInt32>, colorKey: PNGDecoder.ColorKey?) {
        self.header = header
        self.lookup = lookup
        self.colorKey = colorKey
    }

    /// Converts pixels `first ..< first + count` of the scanline at `row` to RGBA8 at `output`.
    ///
    /// The caller guarantees the scanline has at least `first + count` pixels and `output` room for
    /// `4 * count` bytes.
    ///
    /// - Complexity: O(`count`).
    func convert(_ row: UnsafePointer<UInt8>, from first: Int, count: Int, to output: UnsafeMutablePointer<UInt8>) {
        let out = UnsafeMutableRawPointer(output)
        @inline(__always) func store(_ i: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8) {
            let pixel = UInt32(r) | UInt32(g) << 8 | UInt32(b) << 16 | UInt32(a) << 24
            out.storeBytes(of: pixel.littleEndian, toByteOffset: i &* 4, as: UInt32.self)
        }
        let depth = header.bitDepth
        switch header.colorType {
        case .grayscale where depth <= 8, .indexed:
            // Every possible sample value has its RGBA pixel in the table (256 entries for indexed;
            // 2^depth for gray, and a packed sample can never exceed that).
            let table = lookup.baseAddress!
            if depth == 8 {
                for i in 0..<count {
                    out.storeBytes(of: table[Int(row[first &+ i])], toByteOffset: i &* 4, as: UInt32.self)
                }
            } else {
                let mask = (1 << depth) - 1
                for i in 0..<count {
                    let bit = (first &+ i) &* depth
                    let value = Int(row[bit >> 3]) >> (8 &- depth &- (bit & 7)) & mask
                    out.storeBytes(of: table[value], toByteOffset: i &* 4, as: UInt32.self)
                }
            }
        case .grayscale:  // 16-bit
            let key = colorKey.map { Int($0.red) } ?? -1
            for i in 0..<count {
                let p = row + (first &+ i) &* 2
                let gray = p[0]
                let value = Int(p[0]) << 8 | Int(p[1])
                store(i, gray, gray, gray, value == key ? 0 : 255)
            }
        case .grayscaleAlpha:
            let step = depth / 4  // bytes per pixel: 2 or 4
            let alphaOffset = step / 2
            for i in 0..<count {
                let p = row + (first &+ i) &* step
                store(i, p[0], p[0], p[0], p[alphaOffset])
            }
        case .truecolor where depth == 8:
            if let key = colorKey {
                for i in 0..<count {
                    let p = row + (first &+ i) &* 3
                    let transparent = UInt16(p[0]) == key.red && UInt16(p[1]) == key.green && UInt16(p[2]) == key.blue
                    store(i, p[0], p[1], p[2], transparent ? 0 : 255)
                }
            } else {
                for i in 0..<count {
                    let p = row + (first &+ i) &* 3
                    store(i, p[0], p[1], p[2], 255)
                }
            }
        case .truecolor:  // 16-bit
            let key = colorKey
            for i in 0..<count {
                let p = row + (first &+ i) &* 6
                var alpha: UInt8 = 255
                if let key,
                   UInt16(p[0]) << 8 | UInt16(p[1]) == key.red,
                   UInt16(p[2]) << 8 | UInt16(p[3]) == key.green,
                   UInt16(p[4]) << 8 | UInt16(p[5]) == key.blue {
                    alpha = 0
                }
                store(i, p[0], p[2], p[4], alpha)
            }
        case .truecolorAlpha where depth == 8:
            output.update(from: row + first &* 4, count: count &* 4)
        case .truecolorAlpha:  // 16-bit
            for i in 0..<count {
                let p = row + (first &+ i) &* 8
                store(i, p[0], p[2], p[4], p[6])
            }
        }
    }
}
