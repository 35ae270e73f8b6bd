import Foundation
import PNGDecoder
import Testing

/// Where the test fixtures live, found from this file's path so the tests run from any directory.
enum Fixtures {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let packageDirectory = testsDirectory.deletingLastPathComponent()
    static let referenceScript = testsDirectory.appendingPathComponent("Support/png_reference.py")
    static let photosDirectory = packageDirectory.appendingPathComponent("Examples/ImageDecoderDemo/Photos")

    /// The PNG photographs shipped with the demo.
    static var photos: [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: photosDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".png") }.sorted().map { photosDirectory.appendingPathComponent($0) }
    }

    static func bytes(of url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

    /// A 12×9 RGB8 Adam7 image with mixed filters and two IDAT chunks, written by png_reference.py.
    static let smallInterlaced: [UInt8] = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
        0x00, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x09, 0x08, 0x02, 0x00, 0x00, 0x01, 0xFE, 0xDD, 0x6A,
        0x95, 0x00, 0x00, 0x00, 0x20, 0x74, 0x45, 0x58, 0x74, 0x43, 0x6F, 0x6D, 0x6D, 0x65, 0x6E, 0x74,
        0x00, 0x6D, 0x61, 0x64, 0x65, 0x20, 0x62, 0x79, 0x20, 0x70, 0x6E, 0x67, 0x5F, 0x72, 0x65, 0x66,
        0x65, 0x72, 0x65, 0x6E, 0x63, 0x65, 0x2E, 0x70, 0x79, 0x04, 0x94, 0x33, 0x9C, 0x00, 0x00, 0x00,
        0xB1, 0x49, 0x44, 0x41, 0x54, 0x78, 0xDA, 0x01, 0x57, 0x01, 0xA8, 0xFE, 0x00, 0x00, 0xC2, 0x25,
        0xF8, 0x20, 0x69, 0x01, 0xD8, 0x9A, 0x5C, 0xF8, 0xF8, 0xD9, 0x02, 0x1F, 0xCB, 0x80, 0x03, 0xC5,
        0x31, 0x0F, 0x04, 0x6C, 0x2E, 0xAA, 0x47, 0xFC, 0x60, 0xB1, 0xFC, 0xAB, 0x00, 0x13, 0x40, 0x02,
        0x7A, 0x3C, 0xFE, 0xB9, 0x38, 0x7C, 0x01, 0x2B, 0x57, 0x0E, 0xBB, 0x15, 0x5C, 0x77, 0xE0, 0xFC,
        0x02, 0xD7, 0xC1, 0x3B, 0x64, 0xA8, 0x71, 0xF1, 0x31, 0x6C, 0x03, 0x4D, 0xF8, 0xBA, 0x8E, 0xFA,
        0x46, 0xD8, 0xB9, 0x65, 0x97, 0xF8, 0xD9, 0xD6, 0xB7, 0xA6, 0x95, 0xF6, 0x8E, 0x04, 0x55, 0x6C,
        0x0A, 0xC1, 0xD1, 0x01, 0x6C, 0xEA, 0xCE, 0x6C, 0xFD, 0x6C, 0x55, 0x6C, 0x28, 0x6A, 0x1E, 0x64,
        0x00, 0x30, 0x01, 0xC3, 0xBD, 0x1E, 0x3F, 0x3B, 0x44, 0xBF, 0x5C, 0x7B, 0x60, 0x37, 0xA0, 0xBB,
        0xB5, 0x77, 0x39, 0x01, 0x06, 0x37, 0x86, 0x15, 0x7E, 0x42, 0x56, 0x7E, 0x19, 0x7E, 0x7E, 0x92,
        0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0x02, 0xA5, 0x93, 0xA9, 0x0E, 0x95, 0x2A, 0x36, 0x01, 0x66,
        0x36, 0xF5, 0x36, 0x6A, 0x13, 0x18, 0x36, 0x72, 0x36, 0x03, 0x8C, 0xBB, 0x4E, 0xDA, 0x27, 0x38,
        0x5A, 0xB5, 0x98, 0xDA, 0x5C, 0xBF, 0xB4, 0x0A, 0x46, 0xF4, 0x00, 0x00, 0x00, 0xB1, 0x49, 0x44,
        0x41, 0x54, 0x40, 0x9E, 0x70, 0xDA, 0x9F, 0x05, 0x04, 0x36, 0xB9, 0x1A, 0x7E, 0x7E, 0x36, 0xEA,
        0x00, 0x7E, 0xEC, 0xDB, 0xDE, 0x36, 0xFC, 0x0A, 0x7E, 0x16, 0x85, 0x00, 0x1B, 0xDD, 0x25, 0x5A,
        0x1C, 0x4D, 0xD7, 0x5B, 0xA0, 0xD8, 0x9A, 0x5C, 0x23, 0x8A, 0x9B, 0x1F, 0x9E, 0xE4, 0x95, 0x57,
        0x0B, 0xB5, 0x96, 0x58, 0x13, 0x42, 0xCB, 0x52, 0x29, 0xD6, 0x91, 0x53, 0x15, 0xD0, 0xD4, 0xC2,
        0x01, 0x87, 0x13, 0x0B, 0x09, 0xA6, 0x09, 0x7D, 0xDF, 0x1A, 0x78, 0xBD, 0x64, 0xC8, 0x53, 0xD1,
        0x80, 0xCC, 0xAD, 0xFE, 0x9A, 0xE1, 0x3F, 0xA2, 0x9D, 0xA8, 0x0A, 0x3F, 0xD6, 0x90, 0x3F, 0x3F,
        0xB6, 0x3F, 0x64, 0x3D, 0x1B, 0x02, 0x70, 0x23, 0x12, 0x36, 0xCF, 0xD3, 0x13, 0x2F, 0x38, 0x62,
        0x9F, 0xEC, 0x37, 0xBF, 0xE3, 0xF5, 0x10, 0x36, 0x10, 0xB5, 0x4D, 0x45, 0x0B, 0x36, 0x3D, 0x87,
        0xFE, 0xCB, 0x28, 0x36, 0x36, 0xAD, 0x36, 0x11, 0xC1, 0x5A, 0x03, 0xEE, 0x64, 0x4D, 0x65, 0xFD,
        0xDF, 0xAD, 0xBE, 0x0A, 0xA5, 0x33, 0x4C, 0x40, 0xD3, 0xB6, 0x98, 0x3E, 0x3B, 0xA6, 0x3B, 0x5E,
        0x3F, 0x5E, 0x3B, 0x0B, 0x54, 0xB4, 0x69, 0x35, 0x0C, 0x3B, 0x44, 0x3B, 0x6E, 0x3B, 0xE3, 0x58,
        0x74, 0x96, 0x19, 0x80, 0xC4, 0x78, 0x79, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
        0x42, 0x60, 0x82,    ]
}

/// Runs Tests/Support/png_reference.py, which writes PNGs and the RGBA8 pixels Pillow (or the PNG
/// specification, where Pillow strays from it) says they hold.
enum PythonReference {
    /// The switch CI sets so that a missing python3, Pillow or scikit-image fails these tests
    /// instead of skipping them.
    static let requireEnvironmentVariable = "VOLATILE_REQUIRE_PYTHON_TESTS"

    /// Whether this process must run the Python reference tests (see ``isRequired(environment:)``).
    static let isRequired = isRequired(environment: ProcessInfo.processInfo.environment)

    /// Whether `environment` makes the Python reference tests required: only
    /// `VOLATILE_REQUIRE_PYTHON_TESTS` set to `1`, `true` or `yes` does. Each switch covers its own
    /// tests: `VOLATILE_REQUIRE_PRESSURE_TESTS` is for the memory-pressure tests alone, so a machine
    /// with cgroups but without scikit-image can require those and still skip these.
    static func isRequired(environment: [String: String]) -> Bool {
        environment[requireEnvironmentVariable].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
    }

    /// Whether python3 with Pillow and numpy runs here.
    static let hasPillow: Bool = (try? run(["check"])) != nil

    /// Whether python3 with Pillow, numpy and scikit-image runs here.
    static let hasScikitImage: Bool = (try? run(["check", "--skimage"])) != nil

    /// Conditions for `.enabled(if:)`: run when the packages are there, or when CI requires them
    /// (the test then fails on the missing package rather than skipping).
    static var shouldRunPillowTests: Bool { hasPillow || isRequired }
    static var shouldRunScikitImageTests: Bool { hasScikitImage || isRequired }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs the script with `arguments` and returns its standard output.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", referenceScript.path] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting so a full pipe cannot stall the child.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "png_reference.py \(arguments.first ?? "") exited with \(process.terminationStatus): "
                + String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    private static var referenceScript: URL { Fixtures.referenceScript }

    /// One image and the pixels it must decode to.
    struct Case: CustomStringConvertible {
        var name: String
        var file: URL
        var width: Int
        var height: Int
        var expectedRGBA: URL
        /// "pillow", "spec+pillow" or "spec" (see png_reference.py).
        var source: String
        var description: String { name }
    }

    /// Reads the manifest.tsv that the script wrote into `directory`.
    static func cases(in directory: URL) throws -> [Case] {
        let text = try String(contentsOf: directory.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6, let width = Int(fields[2]), let height = Int(fields[3]) else {
                throw Failure(description: "bad manifest line: \(line)")
            }
            return Case(name: fields[0], file: URL(fileURLWithPath: fields[1]), width: width, height: height,
                        expectedRGBA: URL(fileURLWithPath: fields[4]), source: fields[5])
        }
    }

    /// A fresh temporary directory, removed by `body`'s end.
    static func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("png-reference-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try body(directory)
    }
}

/// A deterministic pseudo-random generator (SplitMix64), so every failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Describes the first pixel where two RGBA8 images differ, or nil when they are equal.
func firstDifference(_ actual: [UInt8], _ expected: [UInt8], width: Int) -> String? {
    guard actual != expected else { return nil }
    guard actual.count == expected.count else { return "size \(actual.count) bytes, expected \(expected.count)" }
    let index = actual.indices.first { actual[$0] != expected[$0] }!
    let pixel = index / 4
    let start = pixel * 4
    return "pixel (\(pixel % width), \(pixel / width)) is \(Array(actual[start..<start + 4])), expected \(Array(expected[start..<start + 4]))"
}

/// Writes minimal PNGs without a compressor (stored deflate blocks), for tests that must not
/// depend on Python: RGBA8, filter type 0 or Up per row, optionally Adam7-interlaced.
enum StoredPNGWriter {
    static func make(width: Int, height: Int, interlaced: Bool, pixel: (Int, Int) -> (UInt8, UInt8, UInt8, UInt8)) -> [UInt8] {
        var raw: [UInt8] = []
        let passes: [(Int, Int, Int, Int)] = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)]
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx))
            let ys = Array(stride(from: y0, to: height, by: dy))
            guard !xs.isEmpty, !ys.isEmpty else { continue }
            var previous = [UInt8](repeating: 0, count: xs.count * 4)
            for (rowIndex, y) in ys.enumerated() {
                var row: [UInt8] = []
                for x in xs {
                    let (r, g, b, a) = pixel(x, y)
                    row += [r, g, b, a]
                }
                let useUp = rowIndex % 2 == 1
                raw.append(useUp ? 2 : 0)
                raw += useUp ? zip(row, previous).map { $0 &- $1 } : row
                previous = row
            }
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65535, raw.count - offset)
            let isLast = offset + count == raw.count
            zlib += [isLast ? 1 : 0, UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)]
            zlib += raw[offset..<offset + count]
            offset += count
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        zlib += bigEndian(b << 16 | a)

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 6, 0, 0, interlaced ? 1 : 0])
        png += chunk("IDAT", zlib)
        png += chunk("IEND", [])
        return png
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return ~crc
    }
}

/// Writes deflate streams bit by bit, least significant bit first (RFC 1951 §3.1.1).
struct DeflateBitWriter {
    private(set) var bytes: [UInt8] = []
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0

    /// Appends the low `count` bits of `value`, first bit first.
    mutating func write(_ value: UInt64, bits count: Int) {
        bitBuffer |= value << UInt64(bitCount)
        bitCount += count
        while bitCount >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: bitBuffer))
            bitBuffer >>= 8
            bitCount -= 8
        }
    }

    /// Appends a Huffman code: its bits go out most significant first.
    mutating func writeCode(_ code: UInt64, length: Int) {
        var reversed: UInt64 = 0
        for bit in 0..<length where code & (1 << UInt64(length - 1 - bit)) != 0 { reversed |= 1 << UInt64(bit) }
        write(reversed, bits: length)
    }

    /// Pads to a byte boundary with zero bits.
    mutating func alignToByte() {
        if bitCount > 0 { write(0, bits: 8 - bitCount) }
    }

    /// Appends `count` zero bytes as fast as deflate allows: one dynamic block whose only match is
    /// (length 258, distance 1) with a 1-bit length code and a 1-bit distance code, 1032 bytes of
    /// output per byte of input. `count % 258` literal zeros (2 bits each) come first; with none,
    /// the block needs a byte of output before it as the distance-1 source.
    mutating func writeZeroRun(count: Int, isFinal: Bool) {
        write(isFinal ? 1 : 0, bits: 1)
        write(2, bits: 2)  // dynamic Huffman
        write(29, bits: 5)  // HLIT: 286 literal/length codes
        write(0, bits: 5)  // HDIST: 1 distance code
        write(14, bits: 4)  // HCLEN: 18 code-length codes
        // Code-length code lengths in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
        // symbol 18 gets 1 bit (code 0), symbols 1 and 2 get 2 bits (codes 10 and 11).
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]
        let lengths: [Int: UInt64] = [18: 1, 2: 2, 1: 2]
        for symbol in order { write(lengths[symbol] ?? 0, bits: 3) }
        func zeros(_ n: Int) { writeCode(0, length: 1); write(UInt64(n - 11), bits: 7) }
        // Literal/length lengths: 0 → 2, 1…255 → 0, 256 → 2, 257…284 → 0, 285 → 1; distance 0 → 1.
        writeCode(0b11, length: 2)
        zeros(138)
        zeros(117)
        writeCode(0b11, length: 2)
        zeros(28)
        writeCode(0b10, length: 2)
        writeCode(0b10, length: 2)
        // Canonical codes: 285 → 0, literal 0 → 10, end of block → 11; distance 0 → 0.
        for _ in 0..<(count % 258) { writeCode(0b10, length: 2) }
        for _ in 0..<(count / 258) { write(0, bits: 2) }
        writeCode(0b11, length: 2)
    }

    /// Appends a stored block holding `data` (at most 65535 bytes).
    mutating func writeStored(_ data: [UInt8], isFinal: Bool) {
        write(isFinal ? 1 : 0, bits: 1)
        write(0, bits: 2)
        alignToByte()
        write(UInt64(data.count), bits: 16)
        write(UInt64(~data.count & 0xFFFF), bits: 16)
        bytes += data
    }
}

/// The Adler-32 of `bytes` followed by `zeroCount` zero bytes, big-endian as zlib stores it.
func adler32(_ bytes: [UInt8], zeroCount: Int = 0) -> [UInt8] {
    var a: UInt64 = 1, b: UInt64 = 0
    for byte in bytes { a = (a + UInt64(byte)) % 65521; b = (b + a) % 65521 }
    b = (b + a * UInt64(zeroCount % 65521)) % 65521
    return StoredPNGWriter.bigEndian(UInt32(b << 16 | a))
}
