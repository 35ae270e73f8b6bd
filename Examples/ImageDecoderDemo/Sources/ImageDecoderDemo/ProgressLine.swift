import Glibc

/// The live progress line, redrawn in place on a terminal (and never written anywhere else:
/// logs and pipes get the SAMPLE lines instead).
final class ProgressLine {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let label: String

    /// A progress line on standard error if it is a terminal, on `ttyPath` if given (a
    /// sandboxed child writes to its parent's terminal), or nil when there is no terminal.
    /// - Parameters:
    ///   - label: The cache's name, shown first.
    ///   - ttyPath: A terminal device to open instead of standard error.
    static func make(label: String, ttyPath: String?) -> ProgressLine? {
        if let ttyPath {
            let fd = open(ttyPath, O_WRONLY | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            guard isatty(fd) == 1 else {
                close(fd)
                return nil
            }
            return ProgressLine(fd: fd, owns: true, label: label)
        }
        return isatty(2) == 1 ? ProgressLine(fd: 2, owns: false, label: label) : nil
    }

    private init(fd: Int32, owns: Bool, label: String) {
        self.fd = fd
        self.ownsDescriptor = owns
        self.label = label
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Redraws the line.
    func update(elapsed: Double, total: Double, accessesPerSecond: Double, hitRate: Double, figures: CacheFigures) {
        let text = "\r\u{1B}[2K" + pad(label, 13, right: true)
            + " \(fixed(elapsed, 1))/\(fixed(total, 0)) s"
            + "  \(fixed(accessesPerSecond, 0)) accesses/s"
            + "  hits \(fixed(hitRate * 100, 1)) %"
            + "  resident \(mebibytes(figures.residentBytes)) MiB"
            + "  drops \(figures.drops)"
            + "  regenerations \(figures.regenerations)"
        Output.write(text, to: fd)
    }

    /// Erases the line.
    func clear() {
        Output.write("\r\u{1B}[2K", to: fd)
    }
}
