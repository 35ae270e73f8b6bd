/// A two-level lookup table that decodes one canonical Huffman code of RFC 1951.
///
/// Each 32-bit entry packs what the inflater needs after a single lookup:
///
/// | bits  | meaning                                                      |
/// |-------|--------------------------------------------------------------|
/// | 0–7   | code length in bits (0 = no code has these bits), or, for a link, the subtable's index width |
/// | 8–11  | ``Kind``                                                     |
/// | 12–15 | number of extra bits that follow the code                    |
/// | 16–31 | literal byte, base length, base distance, or subtable offset |
///
/// Codes up to ``primaryBits`` long resolve in the primary table. Longer codes go through a link
/// entry to a subtable indexed by the next `maximumLength − primaryBits` bits; every subtable has
/// that same size, which wastes a few entries but keeps the build simple and its bound obvious.
struct HuffmanTable: ~Copyable {
    enum Kind: UInt32 {
        case invalid = 0, literal = 1, lengthOrDistance = 2, endOfBlock = 3, link = 4
    }

    enum Alphabet {
        case literalLength, distance, codeLength

        /// The packed entry (without code length) of `symbol`.
        func entry(for symbol: Int) -> UInt32 {
            switch self {
            case .codeLength:
                return HuffmanTable.pack(kind: .literal, extraBits: 0, value: UInt32(symbol))
            case .literalLength:
                if symbol < 256 { return HuffmanTable.pack(kind: .literal, extraBits: 0, value: UInt32(symbol)) }
                if symbol == 256 { return HuffmanTable.pack(kind: .endOfBlock, extraBits: 0, value: 0) }
                let index = symbol - 257
                guard index < lengthBase.count else { return HuffmanTable.pack(kind: .invalid, extraBits: 0, value: 0) }
                return HuffmanTable.pack(kind: .lengthOrDistance, extraBits: lengthExtra[index], value: lengthBase[index])
            case .distance:
                guard symbol < distanceBase.count else { return HuffmanTable.pack(kind: .invalid, extraBits: 0, value: 0) }
                return HuffmanTable.pack(kind: .lengthOrDistance, extraBits: distanceExtra[symbol], value: distanceBase[symbol])
            }
        }
    }

    static let primaryBits = 10
    static let maximumCodeLength = 15

    let entries: UnsafeMutablePointer<UInt32>
    private let capacity: Int

    /// Allocates room for an alphabet of up to `symbolCount` symbols.
    init(symbolCount: Int) {
        // Primary table plus, at worst, one full-size subtable per symbol.
        capacity = (1 << Self.primaryBits) + symbolCount << (Self.maximumCodeLength - Self.primaryBits)
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: 0, count: 1 << Self.primaryBits)
    }

    deinit { entries.deallocate() }

    static func pack(kind: Kind, extraBits: UInt32, value: UInt32) -> UInt32 {
        (value << 16) | (extraBits << 12) | (kind.rawValue << 8)
    }

    /// Rebuilds the table for the code whose lengths are `lengths[0..<count]`.
    ///
    /// Over-subscribed codes are rejected. Incomplete codes are accepted only when their longest
    /// code is one bit (RFC 1951 allows a lone distance code), as zlib does; bit patterns without a
    /// code decode to an entry of length 0, which the inflater reports as an invalid symbol.
    ///
    /// - Throws: ``InflateError/invalidHuffmanTable``.
    /// - Complexity: O(`count` + table size).
    mutating func build(lengths: UnsafePointer<UInt8>, count: Int, alphabet: Alphabet) throws(InflateError) {
        var lengthCounts = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var maximumLength = 0
        try withUnsafeMutableBytes(of: &lengthCounts) { (raw) throws(InflateError) in
            let counts = raw.bindMemory(to: Int.self)
            for symbol in 0..<count {
                let length = Int(lengths[symbol])
                guard length <= Self.maximumCodeLength else { throw .invalidHuffmanTable }
                counts[length] += 1
                maximumLength = max(maximumLength, length)
            }
            counts[0] = 0
            var left = 1
            for length in 1...Self.maximumCodeLength {
                left = (left << 1) - counts[length]
                guard left >= 0 else { throw .invalidHuffmanTable }
            }
            if left > 0 && maximumLength > 1 { throw .invalidHuffmanTable }

            // next code of each length, in place of the counts (RFC 1951 §3.2.2)
            var code = 0
            var previousCount = 0
            for length in 1...Self.maximumCodeLength {
                code = (code + previousCount) << 1
                previousCount = counts[length]
                counts[length] = code
            }

            let primarySize = 1 << Self.primaryBits
            entries.update(repeating: 0, count: primarySize)
            let subtableBits = max(0, maximumLength - Self.primaryBits)
            let subtableSize = 1 << subtableBits
            var used = primarySize
            for symbol in 0..<count {
                let length = Int(lengths[symbol])
                if length == 0 { continue }
                let canonical = counts[length]
                counts[length] += 1
                var reversed = 0
                for bit in 0..<length where canonical & (1 << (length - 1 - bit)) != 0 {
                    reversed |= 1 << bit
                }
                let entry = alphabet.entry(for: symbol) | UInt32(length)
                if length <= Self.primaryBits {
                    var index = reversed
                    while index < primarySize {
                        entries[index] = entry
                        index += 1 << length
                    }
                } else {
                    let prefix = reversed & (primarySize - 1)
                    var link = entries[prefix]
                    if link == 0 {
                        // capacity allows one subtable per symbol, and each symbol opens at most one
                        precondition(used + subtableSize <= capacity, "Huffman subtable overflow")
                        link = Self.pack(kind: .link, extraBits: 0, value: UInt32(used)) | UInt32(subtableBits)
                        (entries + used).update(repeating: 0, count: subtableSize)
                        entries[prefix] = link
                        used += subtableSize
                    }
                    let subtable = entries + Int(link >> 16)
                    let step = 1 << (length - Self.primaryBits)
                    var index = reversed >> Self.primaryBits
                    while index < subtableSize {
                        subtable[index] = entry
                        index += step
                    }
                }
            }
        }
    }
}

private let lengthBase: [UInt32] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
]
private let lengthExtra: [UInt32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]
private let distanceBase: [UInt32] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
    6145, 8193, 12289, 16385, 24577,
]
private let distanceExtra: [UInt32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]
