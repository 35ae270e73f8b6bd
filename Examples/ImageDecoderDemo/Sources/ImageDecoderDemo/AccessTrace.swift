import Glibc

/// `--trace PATH`: one line per access, `index byteCount`, so that anyone can replay the run
/// (`volatile-policy-sim --trace PATH`). Buffered, flushed every 64 KiB with write(2): a
/// sandboxed run may be OOM-killed, and the lines written until then stay replayable.
final class AccessTrace {
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    /// An error opening the file.
    struct OpenError: Error, CustomStringConvertible {
        var path: String
        var errno: Int32
        var description: String { "cannot write the trace \(path): \(String(cString: strerror(errno)))" }
    }

    /// Creates (or truncates) the file and writes its header comment.
    /// - Throws: ``OpenError``.
    init(path: String, header: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OpenError(path: path, errno: errno) }
        buffer.reserveCapacity(1 << 16)
        comment(header)
    }

    /// Records one access.
    func record(index: Int, byteCount: Int) {
        buffer += "\(index) \(byteCount)\n".utf8
        if buffer.count >= 1 << 16 { flush() }
    }

    /// Writes a `# ` comment line (the simulator reads `resident_bytes=N` from one).
    func comment(_ text: String) {
        buffer += "# \(text)\n".utf8
    }

    /// Writes out what is buffered.
    func flush() {
        guard !buffer.isEmpty else { return }
        Output.write(String(decoding: buffer, as: UTF8.self), to: descriptor)
        buffer.removeAll(keepingCapacity: true)
    }

    deinit {
        flush()
        close(descriptor)
    }
}
