import Glibc

/// This process's memory figures from /proc, in bytes.
///
/// RSS counts lazily freed (`MADV_FREE`) pages until the kernel takes them, so for the volatile
/// cache it looks full; `LazyFree` (from smaps_rollup) says how much of it the kernel may take
/// back at any time.
enum ProcessMemory {
    /// Resident set size (`/proc/self/statm`, second field).
    static func residentBytes() -> Int {
        guard let text = readSmallFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Resident anonymous memory (`RssAnon:` in `/proc/self/status`): what a memory cgroup is
    /// charged for this process, less the page cache; RSS also counts shared libraries.
    static func anonymousResidentBytes() -> Int {
        kibibytes(named: "RssAnon:", in: "/proc/self/status") * 1024
    }

    /// Lazily freed bytes still resident (`LazyFree:` in `/proc/self/smaps_rollup`).
    /// - Complexity: The kernel walks every mapping: about a millisecond per GiB mapped.
    static func lazyFreeBytes() -> Int {
        kibibytes(named: "LazyFree:", in: "/proc/self/smaps_rollup") * 1024
    }

    /// CPU time of this process so far, user and system (system includes the reclaim the
    /// kernel does on this process's behalf when its cgroup is at its limit).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    /// Peak resident set size (`VmHWM:` in `/proc/self/status`).
    static func peakResidentBytes() -> Int {
        kibibytes(named: "VmHWM:", in: "/proc/self/status") * 1024
    }

    private static func kibibytes(named name: String, in path: String) -> Int {
        guard let text = readSmallFile(path) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let number = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return number.flatMap { Int($0) } ?? 0
        }
        return 0
    }

    /// Reads a /proc file (they report size 0, so read until end of file).
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Unbuffered output: a sandboxed child may be OOM-killed at any moment, and lines still in a
/// stdio buffer would be lost with it.
enum Output {
    /// Writes `text` and a newline to standard output.
    static func line(_ text: String) {
        write(text + "\n", to: 1)
    }

    /// Writes `text` and a newline to standard error.
    static func error(_ text: String) {
        write(text + "\n", to: 2)
    }

    /// Writes all of `text` to `fd`.
    static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// Formats a number with a fixed count of decimals (no Foundation needed in the workload).
func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let fraction = Int(rounded - Double(whole) * scale)
    let sign = value < 0 && rounded > 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let digits = String(fraction)
    return sign + String(whole) + "." + String(repeating: "0", count: decimals - digits.count) + digits
}

/// Bytes as MiB with one decimal.
func mebibytes(_ bytes: Int) -> String {
    fixed(Double(bytes) / 1_048_576, 1)
}

/// Pads `text` on the left (numbers) or right (names) to `width`.
func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let count = text.count
    guard count < width else { return text }
    let padding = String(repeating: " ", count: width - count)
    return right ? text + padding : padding + text
}
