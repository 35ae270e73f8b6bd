/// A streaming zlib (RFC 1950) / deflate (RFC 1951) decompressor that hands out its output in
/// pieces of any size, so a PNG can be unfiltered scanline by scanline.
///
/// Output goes first into a 64 KiB ring that also serves as the 32 KiB back-reference window; the
/// reader copies it out with ``read(into:count:)``. Decoding pauses whenever the ring could not take
/// another maximal match (258 bytes) without overwriting unread bytes, so the state to keep between
/// calls is only which block is open, never a half-copied match.
///
/// The inflater reads `input` through an unsafe pointer: it must not outlive the buffer it was
/// created with (``PNGDecoder`` keeps it local to one decode call).
struct Inflater: ~Copyable {
    private enum BlockState {
        /// Between blocks: the next bits are a block header.
        case header
        /// Inside a stored block with this many bytes still to copy.
        case stored(remaining: Int)
        /// Inside a Huffman-coded block (fixed or dynamic; the tables say which).
        case huffman
        /// The final block has ended and the Adler-32 trailer has been checked.
        case finished
    }

    private static let ringSize = 1 << 16
    private static let ringMask = ringSize - 1
    private static let maximumMatch = 258
    /// Bytes a word-at-a-time match copy may write past the match's end.
    private static let copySlack = 8

    private let input: UnsafePointer<UInt8>
    private let inputCount: Int
    private var inputPosition = 0

    /// Bits not yet consumed, least significant first.
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0
    /// Zero bytes appended past the end of the input so refills stay branch-light; consuming any of
    /// them means the stream was truncated.
    private var phantomBytes = 0

    private let ring: UnsafeMutablePointer<UInt8>
    /// Total bytes produced so far; the ring index is `produced & ringMask`.
    private var produced = 0
    /// Total bytes handed to the reader so far.
    private var consumed = 0

    private var state = BlockState.header
    private var isFinalBlock = false
    private var adler = Adler32()
    private var expectedAdler: UInt32 = 0
    private var hasReadZlibHeader = false

    /// Whether `literals` and `distances` hold the fixed code, so consecutive fixed blocks skip the rebuild.
    private var tablesAreFixed = false
    private var literals = HuffmanTable(symbolCount: 288)
    private var distances = HuffmanTable(symbolCount: 32)
    private var codeLengths = HuffmanTable(symbolCount: 19)
    /// Code lengths of the current dynamic block: literal/length codes then distance codes.
    private let lengths: UnsafeMutablePointer<UInt8>

    /// Prepares to inflate the zlib stream in `input`; nothing is read until the first call to
    /// ``read(into:count:)``.
    init(input: UnsafeRawBufferPointer) {
        // An empty buffer has no base address; point at a static empty byte instead.
        self.input = input.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(Self.emptyInput)
        self.inputCount = input.count
        ring = .allocate(capacity: Self.ringSize)
        lengths = .allocate(capacity: 288 + 32)
    }

    deinit {
        ring.deallocate()
        lengths.deallocate()
    }

    private nonisolated(unsafe) static let emptyInput = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

    /// Copies exactly `count` decompressed bytes to `destination`.
    ///
    /// - Throws: ``InflateError/notEnoughData`` if the stream ends first, or any defect found while decoding.
    /// - Complexity: O(`count`) plus the work to decode the compressed bits that produce them.
    mutating func read(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(InflateError) {
        var written = 0
        while written < count {
            if produced == consumed {
                if case .finished = state { throw .notEnoughData }
                try fill()
                continue
            }
            let start = consumed & Self.ringMask
            let run = min(count - written, produced - consumed, Self.ringSize - start)
            (destination + written).update(from: ring + start, count: run)
            adler.update(ring + start, count: run)
            consumed += run
            written += run
        }
    }

    /// What ``finish(trailingOutputLimit:)`` could say about the end of the stream.
    enum Ending: Equatable {
        /// The stream ended within the limit and its Adler-32 trailer matched.
        case verified
        /// The stream went on past the limit after the last byte read; the rest was neither
        /// inflated nor checked.
        case unverified
    }

    /// Decodes what follows the last byte read, discarding it, for at most `trailingOutputLimit`
    /// more output bytes; if the stream ends within that, checks the Adler-32 trailer.
    ///
    /// A well-formed PNG stream ends right after its last scanline, so the tail is a few bytes.
    /// Bounding it keeps a file with a long run of data after the image (which libpng and Pillow
    /// ignore) from costing time in proportion to what that run would inflate to.
    ///
    /// - Parameter trailingOutputLimit: The most output to inflate past the bytes already read.
    /// - Returns: Whether the trailer was checked.
    /// - Throws: any defect found in the inflated tail, including ``InflateError/checksumMismatch``.
    /// - Complexity: O(`trailingOutputLimit`) plus the compressed bytes that produce it.
    mutating func finish(trailingOutputLimit: Int) throws(InflateError) -> Ending {
        let limit = consumed + trailingOutputLimit
        while true {
            let end = min(produced, limit)
            while end > consumed {
                let start = consumed & Self.ringMask
                let run = min(end - consumed, Self.ringSize - start)
                adler.update(ring + start, count: run)
                consumed += run
            }
            if case .finished = state {
                if produced > limit { return .unverified }
                guard adler.value == expectedAdler else { throw .checksumMismatch }
                return .verified
            }
            if produced >= limit { return .unverified }
            try fill()
        }
    }

    // MARK: - Bits

    @inline(__always)
    private mutating func refill() throws(InflateError) {
        if inputPosition + 8 <= inputCount {
            let word = UInt64(littleEndian: UnsafeRawPointer(input + inputPosition).loadUnaligned(as: UInt64.self))
            bitBuffer |= word &<< UInt64(bitCount)
            inputPosition += (63 - bitCount) >> 3
            bitCount |= 56
        } else {
            try refillSlowly()
        }
    }

    private mutating func refillSlowly() throws(InflateError) {
        while bitCount < 56 {
            if inputPosition < inputCount {
                bitBuffer |= UInt64(input[inputPosition]) &<< UInt64(bitCount)
                inputPosition += 1
            } else {
                phantomBytes += 1
            }
            bitCount += 8
        }
        try checkNotOverrun()
    }

    /// Throws if any of the zero bytes appended past the input have been consumed.
    @inline(__always)
    private func checkNotOverrun() throws(InflateError) {
        if phantomBytes &* 8 > bitCount { throw .unexpectedEndOfStream }
    }

    /// Takes `count` (≤ 32) bits; the caller has refilled.
    @inline(__always)
    private mutating func take(_ count: Int) -> UInt32 {
        let value = UInt32(truncatingIfNeeded: bitBuffer & ((1 &<< UInt64(count)) &- 1))
        bitBuffer &>>= UInt64(count)
        bitCount &-= count
        return value
    }

    private mutating func takeBits(_ count: Int) throws(InflateError) -> UInt32 {
        if bitCount < count { try refill() }
        let value = take(count)
        try checkNotOverrun()
        return value
    }

    private mutating func alignToByte() {
        _ = take(bitCount & 7)
    }

    // MARK: - Blocks

    /// Decodes until the ring is nearly full of unread bytes or the stream ends.
    private mutating func fill() throws(InflateError) {
        while true {
            switch state {
            case .finished:
                return
            case .header:
                if !hasReadZlibHeader {
                    try readZlibHeader()
                    hasReadZlibHeader = true
                }
                try readBlockHeader()
            case .stored(let remaining):
                let copied = try copyStored(remaining)
                state = remaining == copied ? .header : .stored(remaining: remaining - copied)
                if remaining != copied { return }
                if isFinalBlock { try readTrailer() }
            case .huffman:
                if try decodeHuffman() {
                    state = .header
                    if isFinalBlock { try readTrailer() }
                } else {
                    return
                }
            }
            if produced - consumed > Self.ringSize - Self.maximumMatch { return }
        }
    }

    private mutating func readZlibHeader() throws(InflateError) {
        let cmf = try takeBits(8)
        let flg = try takeBits(8)
        guard cmf & 0x0F == 8, cmf >> 4 <= 7, (cmf << 8 | flg) % 31 == 0, flg & 0x20 == 0 else {
            throw .invalidZlibHeader
        }
    }

    private mutating func readBlockHeader() throws(InflateError) {
        let header = try takeBits(3)
        isFinalBlock = header & 1 != 0
        switch header >> 1 {
        case 0:
            alignToByte()
            let length = try takeBits(16)
            let complement = try takeBits(16)
            guard length == ~complement & 0xFFFF else { throw .storedLengthMismatch }
            state = .stored(remaining: Int(length))
        case 1:
            try buildFixedTables()
            state = .huffman
        case 2:
            try readDynamicTables()
            state = .huffman
        default:
            throw .invalidBlockType
        }
    }

    /// Reads the Adler-32 trailer; ``finish(trailingOutputLimit:)`` compares it once every byte has passed the reader.
    private mutating func readTrailer() throws(InflateError) {
        alignToByte()
        var expected: UInt32 = 0
        for _ in 0..<4 { expected = expected << 8 | (try takeBits(8)) }
        expectedAdler = expected
        state = .finished
    }

    /// Copies up to `remaining` stored bytes into the ring; returns how many.
    private mutating func copyStored(_ remaining: Int) throws(InflateError) -> Int {
        var copied = 0
        while copied < remaining {
            let space = Self.ringSize - (produced - consumed)
            if space == 0 { break }
            if bitCount >= 8 {
                // Bytes already in the bit buffer come first (the buffer is byte-aligned here).
                ring[produced & Self.ringMask] = UInt8(truncatingIfNeeded: take(8))
                try checkNotOverrun()
                produced += 1
                copied += 1
                continue
            }
            let available = inputCount - inputPosition
            guard available > 0 else { throw .unexpectedEndOfStream }
            // The buffer is empty but its upper bits may hold a look-ahead copy of the bytes about
            // to be skipped; later refills OR into it, so clear it.
            bitBuffer = 0
            let start = produced & Self.ringMask
            let run = min(remaining - copied, space, available, Self.ringSize - start)
            (ring + start).update(from: input + inputPosition, count: run)
            inputPosition += run
            produced += run
            copied += run
        }
        return copied
    }

    // MARK: - Huffman blocks

    private static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    private mutating func buildFixedTables() throws(InflateError) {
        if tablesAreFixed { return }
        (lengths + 0).update(repeating: 8, count: 144)
        (lengths + 144).update(repeating: 9, count: 112)
        (lengths + 256).update(repeating: 7, count: 24)
        (lengths + 280).update(repeating: 8, count: 8)
        try literals.build(lengths: lengths, count: 288, alphabet: .literalLength)
        (lengths + 288).update(repeating: 5, count: 32)
        try distances.build(lengths: lengths + 288, count: 32, alphabet: .distance)
        tablesAreFixed = true
    }

    private mutating func readDynamicTables() throws(InflateError) {
        tablesAreFixed = false
        let literalCount = Int(try takeBits(5)) + 257
        let distanceCount = Int(try takeBits(5)) + 1
        let codeLengthCount = Int(try takeBits(4)) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw .invalidHuffmanTable }

        lengths.update(repeating: 0, count: 19)
        for i in 0..<codeLengthCount {
            lengths[Self.codeLengthOrder[i]] = UInt8(try takeBits(3))
        }
        try codeLengths.build(lengths: lengths, count: 19, alphabet: .codeLength)

        let total = literalCount + distanceCount
        var index = 0
        while index < total {
            try refill()
            let entry = codeLengths.entries[Int(bitBuffer & 0x3FF)]
            let codeLength = Int(entry & 0xFF)
            guard codeLength != 0 else { throw .invalidHuffmanTable }
            _ = take(codeLength)
            let symbol = entry >> 16
            var value: UInt8 = 0
            var repeatCount: Int
            switch symbol {
            case 0..<16:
                lengths[index] = UInt8(symbol)
                index += 1
                continue
            case 16:
                guard index > 0 else { throw .invalidHuffmanTable }
                value = lengths[index - 1]
                repeatCount = 3 + Int(take(2))
            case 17:
                repeatCount = 3 + Int(take(3))
            default:
                repeatCount = 11 + Int(take(7))
            }
            guard index + repeatCount <= total else { throw .invalidHuffmanTable }
            (lengths + index).update(repeating: value, count: repeatCount)
            index += repeatCount
        }
        try checkNotOverrun()
        guard lengths[256] != 0 else { throw .invalidHuffmanTable }
        try literals.build(lengths: lengths, count: literalCount, alphabet: .literalLength)
        try distances.build(lengths: lengths + literalCount, count: distanceCount, alphabet: .distance)
    }

    /// Decodes symbols of the current Huffman block into the ring.
    ///
    /// - Returns: `true` at the end of the block, `false` when the ring must be drained first.
    private mutating func decodeHuffman() throws(InflateError) -> Bool {
        // Work on locals: the optimizer cannot keep `self`'s fields in registers across the ring stores.
        let ring = self.ring
        let literalTable = literals.entries
        let distanceTable = distances.entries
        let mask = Self.ringMask
        let limit = consumed + Self.ringSize - Self.maximumMatch - Self.copySlack
        var produced = self.produced
        defer { self.produced = produced }

        while produced <= limit {
            try refill()
            var bits = bitBuffer
            var entry = literalTable[Int(bits & 0x3FF)]
            if (entry >> 8) & 0xF == HuffmanTable.Kind.link.rawValue {
                entry = literalTable[Int(entry >> 16) + Int((bits >> 10) & ((1 << UInt64(entry & 0xFF)) - 1))]
            }
            let codeLength = entry & 0xFF
            bits >>= UInt64(codeLength)
            var used = Int(codeLength)
            switch (entry >> 8) & 0xF {
            case HuffmanTable.Kind.literal.rawValue where codeLength != 0:
                ring[produced & mask] = UInt8(truncatingIfNeeded: entry >> 16)
                produced += 1
                bitBuffer = bits
                bitCount -= used
            case HuffmanTable.Kind.endOfBlock.rawValue where codeLength != 0:
                bitBuffer = bits
                bitCount -= used
                return true
            case HuffmanTable.Kind.lengthOrDistance.rawValue where codeLength != 0:
                let lengthExtra = UInt64((entry >> 12) & 0xF)
                let length = Int(entry >> 16) + Int(bits & ((1 << lengthExtra) - 1))
                bits >>= lengthExtra
                used += Int(lengthExtra)

                var distanceEntry = distanceTable[Int(bits & 0x3FF)]
                if (distanceEntry >> 8) & 0xF == HuffmanTable.Kind.link.rawValue {
                    distanceEntry = distanceTable[
                        Int(distanceEntry >> 16) + Int((bits >> 10) & ((1 << UInt64(distanceEntry & 0xFF)) - 1))
                    ]
                }
                let distanceCodeLength = distanceEntry & 0xFF
                guard distanceCodeLength != 0,
                      (distanceEntry >> 8) & 0xF == HuffmanTable.Kind.lengthOrDistance.rawValue
                else { throw .invalidSymbol }
                bits >>= UInt64(distanceCodeLength)
                let distanceExtra = UInt64((distanceEntry >> 12) & 0xF)
                let distance = Int(distanceEntry >> 16) + Int(bits & ((1 << distanceExtra) - 1))
                bits >>= distanceExtra
                used += Int(distanceCodeLength) + Int(distanceExtra)
                bitBuffer = bits
                bitCount -= used
                guard distance <= produced else { throw .distanceTooFarBack }

                let target = produced & mask
                let source = (produced - distance) & mask
                if distance >= 8 && target + length + 8 <= Self.ringSize && source + length + 8 <= Self.ringSize {
                    // Eight bytes at a time; a copy may run up to 7 bytes past the match, into ring
                    // space not yet produced (the fill limit keeps `copySlack` bytes free for it).
                    // With distance ≥ 8 each word is read before any byte of it is overwritten.
                    let raw = UnsafeMutableRawPointer(ring)
                    var i = 0
                    while i < length {
                        let word = raw.loadUnaligned(fromByteOffset: source &+ i, as: UInt64.self)
                        raw.storeBytes(of: word, toByteOffset: target &+ i, as: UInt64.self)
                        i &+= 8
                    }
                } else if distance < 8 && target >= 16 && target + length + 8 <= Self.ringSize {
                    // A short distance repeats the last `distance` bytes, so the output is periodic
                    // with `period`, the smallest multiple of `distance` that is at least 8: write
                    // the first period byte by byte, then copy words from one period back, which
                    // are always complete. Runs of one byte (distance 1) are common in images.
                    let period = distance * ((8 + distance - 1) / distance)
                    let head = min(length, period)
                    for i in 0..<head { ring[target &+ i] = ring[target &+ i &- distance] }
                    let raw = UnsafeMutableRawPointer(ring)
                    var i = head
                    while i < length {
                        let word = raw.loadUnaligned(fromByteOffset: target &+ i &- period, as: UInt64.self)
                        raw.storeBytes(of: word, toByteOffset: target &+ i, as: UInt64.self)
                        i &+= 8
                    }
                } else if target + length <= Self.ringSize && source + length <= Self.ringSize {
                    for i in 0..<length { ring[target &+ i] = ring[source &+ i] }
                } else {
                    for i in 0..<length { ring[(target + i) & mask] = ring[(source + i) & mask] }
                }
                produced += length
            default:
                throw .invalidSymbol
            }
        }
        return false
    }
}
