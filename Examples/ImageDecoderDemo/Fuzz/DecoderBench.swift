// Times full decodes (parse + decode) of PNG files with the PNGDecoder sources this binary was
// compiled with. Built and run by bench.sh, which compiles it twice (a baseline git revision and
// the working tree) and reports each file's time as a ratio against the baseline, measured in the
// same run.
//
// Usage: decoder-bench SECONDS FILE...
// Prints per file: name, best milliseconds per parse + decode (repeated for SECONDS, at least
// once), the process's peak RSS and CPU milliseconds so far (the whole process, reading the file
// included), and "ok" or the error thrown.

import Foundation

@main
enum DecoderBench {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let seconds = arguments.first.flatMap(Double.init), arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: decoder-bench SECONDS FILE...\n".utf8))
            exit(2)
        }
        let clock = ContinuousClock()
        for path in arguments.dropFirst() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            var pixels: [UInt8] = []
            var best = Duration.seconds(1_000)
            var outcome = "ok"
            let deadline = clock.now + .milliseconds(Int(seconds * 1000))
            repeat {
                let elapsed = clock.measure {
                    do {
                        let decoder = try PNGDecoder(bytes: bytes)
                        let count = decoder.outputByteCount()
                        if pixels.count != count { pixels = [UInt8](repeating: 0, count: count) }
                        try pixels.withUnsafeMutableBytes { try decoder.decode(into: $0) }
                    } catch {
                        outcome = "\(error)".replacingOccurrences(of: " ", with: "_")
                    }
                }
                best = min(best, elapsed)
            } while clock.now < deadline
            let milliseconds = Double(best.components.attoseconds) / 1e15 + Double(best.components.seconds) * 1000
            var usage = rusage()
            getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
            let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
            let name = URL(fileURLWithPath: path).lastPathComponent
            print("\(name)\t\(String(format: "%.3f", milliseconds))\t\(usage.ru_maxrss / 1024)\t\(String(format: "%.0f", cpu))\t\(outcome)")
        }
    }
}
