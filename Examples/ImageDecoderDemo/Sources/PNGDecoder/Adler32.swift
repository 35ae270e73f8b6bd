/// The Adler-32 checksum that ends every zlib stream (RFC 1950).
struct Adler32 {
    private var a: UInt32 = 1
    private var b: UInt32 = 0

    private static let weights = SIMD16<UInt32>(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)

    /// The checksum of the bytes folded in so far.
    var value: UInt32 { (b << 16) | a }

    /// Folds `count` bytes at `bytes` into the checksum.
    ///
    /// - Complexity: O(*n*) in `count`.
    mutating func update(_ bytes: UnsafePointer<UInt8>, count: Int) {
        // 5552 is the largest n for which 255·n(n+1)/2 + (n+1)(65520) fits in 32 bits, so the
        // modulo can wait until the end of each run.
        var remaining = count
        var p = bytes
        while remaining > 0 {
            let run = min(remaining, 5552)
            // 16 bytes at a time: over a block of n bytes, b grows by n·a plus each byte weighted by
            // how many of the block's sums it enters (n − i), and a by the bytes' sum. Same values
            // as the byte loop, in SIMD-friendly form.
            var i = 0
            while i + 16 <= run {
                let block = SIMD16<UInt32>(truncatingIfNeeded: UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<UInt8>.self))
                b &+= a &* 16 &+ (block &* Self.weights).wrappedSum()
                a &+= block.wrappedSum()
                i += 16
            }
            while i < run {
                a &+= UInt32(p[i])
                b &+= a
                i += 1
            }
            a %= 65521
            b %= 65521
            p += run
            remaining -= run
        }
    }
}
