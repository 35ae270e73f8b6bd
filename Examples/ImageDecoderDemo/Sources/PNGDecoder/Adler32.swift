/// The Adler-32 checksum that ends every zlib stream (RFC 1950).
struct Adler32 {
    private var a: UInt32 = 1
    private var b: UInt32 = 0

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
            for i in 0..<run {
                a &+= UInt32(p[i])
                b &+= a
            }
            a %= 65521
            b %= 65521
            p += run
            remaining -= run
        }
    }
}
