import Glibc

/// A sequence of accesses to replay: what `image-decoder-demo --trace` writes, or a synthetic
/// workload.
///
/// Text form: one access per line, `index byteCount`; lines starting with `#` are comments,
/// and a comment `# resident_bytes=N` gives the cache's measured resident bytes at the end of
/// the recorded run (the simulator's default capacity).
package struct Trace: Sendable {
    /// One access.
    package struct Access: Sendable, Equatable {
        /// The key (an item index).
        package var key: Int
        /// The object's size in bytes.
        package var weight: Int
        /// Whether the access belongs to a scan (synthetic workloads), for separate hit rates.
        package var isScan: Bool

        /// Creates one.
        package init(key: Int, weight: Int, isScan: Bool = false) {
            self.key = key
            self.weight = weight
            self.isScan = isScan
        }
    }

    /// The accesses, in order.
    package var accesses: [Access]
    /// The cache's resident bytes when the trace was recorded, if the trace says.
    package var residentBytes: Int?

    /// Creates a trace.
    package init(accesses: [Access], residentBytes: Int? = nil) {
        self.accesses = accesses
        self.residentBytes = residentBytes
    }

    /// A malformed line.
    package struct ParseError: Error, CustomStringConvertible {
        /// The line number (from 1).
        package var line: Int
        /// The line's text.
        package var text: String
        package var description: String { "trace line \(line) is not \"index byteCount\": \"\(text)\"" }
    }

    /// Parses the text form.
    /// - Parameter text: The trace file's contents.
    /// - Returns: The trace.
    /// - Throws: ``ParseError`` at the first malformed line.
    /// - Complexity: O(length).
    package static func parse(_ text: String) throws(ParseError) -> Trace {
        var trace = Trace(accesses: [])
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                for field in line.dropFirst().split(separator: " ") where field.hasPrefix("resident_bytes=") {
                    trace.residentBytes = Int(field.dropFirst("resident_bytes=".count))
                }
                continue
            }
            let fields = line.split(separator: " ")
            guard fields.count == 2, let key = Int(fields[0]), let weight = Int(fields[1]), key >= 0, weight > 0 else {
                throw ParseError(line: number, text: String(line))
            }
            trace.accesses.append(Access(key: key, weight: weight))
        }
        return trace
    }

    /// The text form (what ``parse(_:)`` reads).
    package var text: String {
        var text = residentBytes.map { "# resident_bytes=\($0)\n" } ?? ""
        for access in accesses { text += "\(access.key) \(access.weight)\n" }
        return text
    }

    /// A file that cannot be read.
    package struct ReadError: Error, CustomStringConvertible {
        /// The path.
        package var path: String
        /// `errno` after the failing call.
        package var errno: Int32
        package var description: String { "cannot read \(path): \(String(cString: strerror(errno)))" }
    }

    /// Reads and parses a trace file.
    /// - Parameter path: The file.
    /// - Returns: The trace.
    /// - Throws: ``ReadError`` or ``ParseError``.
    package static func load(path: String) throws -> Trace {
        guard let file = fopen(path, "r") else { throw ReadError(path: path, errno: Glibc.errno) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes += chunk[0..<count] }
            if count < chunk.count {
                if ferror(file) != 0 { throw ReadError(path: path, errno: Glibc.errno) }
                break
            }
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }
}
