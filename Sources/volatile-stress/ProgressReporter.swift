// Progress lines, once a second, only when standard output is a terminal (a pipe or file gets
// only the final lines, so that tests and scripts can rely on the last line).

import Glibc

/// Prints a line each second while a run lasts.
struct ProgressReporter {
    let isEnabled: Bool
    private let started = ContinuousClock.now

    /// - Parameter forced: `--progress` / `--no-progress`; nil asks `isatty(1)`.
    init(forced: Bool?) {
        isEnabled = forced ?? (isatty(STDOUT_FILENO) == 1)
    }

    /// Seconds since the reporter was created.
    var elapsedSeconds: Double {
        let elapsed = started.duration(to: .now)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Prints `line` prefixed with the elapsed time, when enabled.
    func report(_ line: @autoclosure () -> String) {
        guard isEnabled else { return }
        printLine("[\(String(Int(elapsedSeconds.rounded())).leftPadded(to: 4))s] \(line())")
    }

    /// Sleeps until `deadline` in steps of `sampleInterval`, calling `sample` after each step
    /// and `tick` after each full second (for a progress line), stopping early when
    /// `shouldStop` says so.
    func waitUntil(
        _ deadline: ContinuousClock.Instant, sampleInterval: Duration = .milliseconds(10),
        shouldStop: () -> Bool = { false }, sample: () -> Void = {}, tick: () -> Void
    ) {
        var next = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline && !shouldStop() {
            let wake = min(ContinuousClock.now + sampleInterval, next, deadline)
            let left = ContinuousClock.now.duration(to: wake)
            if left > .zero {
                var request = timespec(tv_sec: Int(left.components.seconds), tv_nsec: Int(left.components.attoseconds / 1_000_000_000))
                _ = nanosleep(&request, nil)
            }
            sample()
            if ContinuousClock.now >= next {
                tick()
                next = next + .seconds(1)
            }
        }
    }
}

/// The resident set size of this process in MiB (from /proc/self/statm), or -1.
func residentMiB() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return -1 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, Int32(line.count), file) != nil else { return -1 }
    let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let fields = text.split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return -1 }
    return (pages * Int(sysconf(Int32(_SC_PAGESIZE)))) >> 20
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
