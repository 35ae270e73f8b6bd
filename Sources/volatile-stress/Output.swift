// Line output straight to the file descriptors: unbuffered, so that lines are complete and in
// order even when the process ends with exit(), and free of the C `stdout`/`stderr` globals
// that strict concurrency rejects.

import Glibc

/// Writes `line` and a newline to standard output.
func printLine(_ line: String) {
    writeAll(STDOUT_FILENO, line + "\n")
}

/// Writes `line` and a newline to standard error.
func printError(_ line: String) {
    writeAll(STDERR_FILENO, line.hasSuffix("\n") ? line : line + "\n")
}

private func writeAll(_ descriptor: Int32, _ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return  // A closed pipe: nobody is listening.
            }
            offset += written
        }
    }
}
