/// Applies a resolved ``PNGTransform`` to RGBA8 rows as they arrive, top to bottom, and writes the
/// output rows into the destination.
///
/// The decoder asks ``rowBuffer(forSourceRow:)`` where to convert the cropped part of each source
/// row, then calls ``commit(sourceRow:)``. Without scaling the buffer *is* the destination row, so
/// rows are converted in place. With scaling, rows go through one scratch row and, for the box
/// filter, a row of 64-bit sums; nothing here grows with the image's height.
struct RowResampler: ~Copyable {
    let transform: ResolvedTransform
    private let destination: UnsafeMutablePointer<UInt8>
    /// One cropped source row of RGBA8, when scaling.
    private let scratchRow: UnsafeMutablePointer<UInt8>?
    /// Per output column: the nearest source column, or the box's first source column.
    private let columnStarts: UnsafeMutablePointer<Int>?
    /// Per output column: one past the box's last source column.
    private let columnEnds: UnsafeMutablePointer<Int>?
    /// Per output pixel and channel: the sum of the box's source samples so far.
    private let sums: UnsafeMutablePointer<UInt64>?
    private var rowsInSums = 0
    private var nextOutputRow = 0

    init(transform: ResolvedTransform, destination: UnsafeMutablePointer<UInt8>) {
        self.transform = transform
        self.destination = destination
        guard transform.isScaling else {
            scratchRow = nil
            columnStarts = nil
            columnEnds = nil
            sums = nil
            return
        }
        let sourceWidth = transform.crop.width
        let outputWidth = transform.outputWidth
        scratchRow = .allocate(capacity: sourceWidth * 4)
        let starts = UnsafeMutablePointer<Int>.allocate(capacity: outputWidth)
        let ends = UnsafeMutablePointer<Int>.allocate(capacity: outputWidth)
        for x in 0..<outputWidth {
            switch transform.filter {
            case .nearest:
                starts[x] = Self.nearest(x, source: sourceWidth, output: outputWidth)
                ends[x] = starts[x] + 1
            case .box:
                (starts[x], ends[x]) = Self.box(x, source: sourceWidth, output: outputWidth)
            }
        }
        columnStarts = starts
        columnEnds = ends
        if transform.filter == .box {
            let s = UnsafeMutablePointer<UInt64>.allocate(capacity: outputWidth * 4)
            s.initialize(repeating: 0, count: outputWidth * 4)
            sums = s
        } else {
            sums = nil
        }
    }

    deinit {
        scratchRow?.deallocate()
        columnStarts?.deallocate()
        columnEnds?.deallocate()
        sums?.deallocate()
    }

    /// The source index under the centre of output index `i`.
    static func nearest(_ i: Int, source: Int, output: Int) -> Int {
        (2 * i + 1) * source / (2 * output)
    }

    /// The half-open range of source indices averaged into output index `i`.
    static func box(_ i: Int, source: Int, output: Int) -> (Int, Int) {
        let start = i * source / output
        return (start, max(start + 1, (i + 1) * source / output))
    }

    /// Where to write the `crop.width` RGBA8 pixels of source row `y` (which lies in the crop).
    func rowBuffer(forSourceRow y: Int) -> UnsafeMutablePointer<UInt8> {
        if let scratchRow { return scratchRow }
        return destination + (y - transform.crop.y) * transform.outputWidth * 4
    }

    /// Takes source row `y`, whose pixels are in ``rowBuffer(forSourceRow:)``, and writes every
    /// output row it completes. Rows must arrive in order, each row of the crop once.
    ///
    /// - Complexity: O(output width × output rows completed), plus O(crop width) for the box filter.
    mutating func commit(sourceRow y: Int) {
        guard let scratchRow, let columnStarts, let columnEnds else { return }
        let row = y - transform.crop.y
        let sourceHeight = transform.crop.height
        let outputWidth = transform.outputWidth
        let outputHeight = transform.outputHeight
        let source = UnsafeRawPointer(scratchRow)

        guard let sums else {
            while nextOutputRow < outputHeight && Self.nearest(nextOutputRow, source: sourceHeight, output: outputHeight) == row {
                let out = UnsafeMutableRawPointer(destination + nextOutputRow * outputWidth * 4)
                for x in 0..<outputWidth {
                    let pixel = source.loadUnaligned(fromByteOffset: columnStarts[x] &* 4, as: UInt32.self)
                    out.storeBytes(of: pixel, toByteOffset: x &* 4, as: UInt32.self)
                }
                nextOutputRow += 1
            }
            return
        }

        for x in 0..<outputWidth {
            let sum = sums + x &* 4
            for sourceX in columnStarts[x]..<columnEnds[x] {
                let p = scratchRow + sourceX &* 4
                sum[0] &+= UInt64(p[0])
                sum[1] &+= UInt64(p[1])
                sum[2] &+= UInt64(p[2])
                sum[3] &+= UInt64(p[3])
            }
        }
        rowsInSums += 1
        // Shrinking: the bands of rows partition the crop, and a band is written when its last row
        // arrives. Enlarging: each band is one row, shared by consecutive output rows.
        while nextOutputRow < outputHeight && Self.box(nextOutputRow, source: sourceHeight, output: outputHeight).1 == row + 1 {
            let out = destination + nextOutputRow * outputWidth * 4
            for x in 0..<outputWidth {
                let count = UInt64((columnEnds[x] - columnStarts[x]) * rowsInSums)
                for channel in 0..<4 {
                    out[x &* 4 &+ channel] = UInt8(truncatingIfNeeded: (sums[x &* 4 &+ channel] + count / 2) / count)
                }
            }
            nextOutputRow += 1
        }
        if nextOutputRow >= outputHeight || Self.box(nextOutputRow, source: sourceHeight, output: outputHeight).0 > row {
            sums.update(repeating: 0, count: outputWidth * 4)
            rowsInSums = 0
        }
    }
}
