/// The current and previous scanline of one image or interlace pass, and the five PNG filters
/// (PNG specification §9) undone in place.
///
/// Each buffer holds the filter-type byte followed by the row's bytes; `current` points past the
/// filter byte. The previous row starts as zeros, as the specification requires for the first
/// row of the image and of every pass.
struct ScanlinePair: ~Copyable {
    private var previousRow: UnsafeMutablePointer<UInt8>
    private var currentRow: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private(set) var rowByteCount: Int

    /// The unfiltered bytes of the most recently read row.
    var current: UnsafePointer<UInt8> { UnsafePointer(currentRow + 1) }

    /// Allocates two rows of up to `rowByteCount` bytes (plus filter byte), zeroed.
    init(rowByteCount: Int) {
        self.capacity = rowByteCount + 1
        self.rowByteCount = rowByteCount
        previousRow = .allocate(capacity: capacity)
        previousRow.initialize(repeating: 0, count: capacity)
        currentRow = .allocate(capacity: capacity)
        currentRow.initialize(repeating: 0, count: capacity)
    }

    deinit {
        previousRow.deallocate()
        currentRow.deallocate()
    }

    /// Starts a new interlace pass whose rows have `rowByteCount` bytes (at most the capacity).
    mutating func startPass(rowByteCount: Int) {
        precondition(rowByteCount < capacity, "pass row longer than the image row")
        self.rowByteCount = rowByteCount
        // readNext swaps before reading, so the row that becomes "previous" is `currentRow`.
        currentRow.update(repeating: 0, count: capacity)
    }

    /// Inflates the next row and undoes its filter.
    ///
    /// - Parameters:
    ///   - inflater: The source of the filtered rows.
    ///   - row: The row's index, for error messages.
    ///   - stride: Bytes per complete pixel, at least 1 (the filters' "pixel to the left").
    /// - Throws: ``PNGError/inflate(_:)`` or ``PNGError/invalidFilter(type:row:)``.
    /// - Complexity: O(row bytes).
    mutating func readNext(from inflater: inout Inflater, row: Int, stride: Int) throws(PNGError) {
        swap(&previousRow, &currentRow)
        do {
            try inflater.read(into: currentRow, count: rowByteCount + 1)
        } catch {
            throw .inflate(error)
        }
        let filter = currentRow[0]
        let line = currentRow + 1
        let above = UnsafePointer(previousRow + 1)
        let count = rowByteCount
        switch filter {
        case 0:
            break
        case 1:
            if count > stride {
                for i in stride..<count { line[i] &+= line[i - stride] }
            }
        case 2:
            for i in 0..<count { line[i] &+= above[i] }
        case 3:
            for i in 0..<min(stride, count) { line[i] &+= above[i] >> 1 }
            if count > stride {
                for i in stride..<count {
                    line[i] &+= UInt8(truncatingIfNeeded: (UInt16(line[i - stride]) + UInt16(above[i])) >> 1)
                }
            }
        case 4:
            // Paeth with a = c = 0 predicts b.
            for i in 0..<min(stride, count) { line[i] &+= above[i] }
            if count > stride {
                for i in stride..<count {
                    line[i] &+= Self.paeth(line[i - stride], above[i], above[i - stride])
                }
            }
        default:
            throw .invalidFilter(type: filter, row: row)
        }
    }

    /// The Paeth predictor: whichever of left, above and upper-left is nearest to left + above − upper-left,
    /// ties broken in that order.
    @inline(__always)
    private static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        // libpng's formulation: pa = |b − c|, pb = |a − c|, pc = |a + b − 2c|, compiled to conditional moves.
        let p = Int(b) - Int(c)
        let q = Int(a) - Int(c)
        var best = abs(p)
        let pb = abs(q)
        let pc = abs(p + q)
        var predictor = a
        if pb < best { best = pb; predictor = b }
        if pc < best { predictor = c }
        return predictor
    }
}
