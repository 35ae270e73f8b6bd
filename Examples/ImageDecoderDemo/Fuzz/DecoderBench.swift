// Times full decodes of PNG files with the PNGDecoder sources this binary was compiled with.
// Built and run by bench.sh, which compiles it twice (a baseline git revision and the working
// tree) and reports each file's time as a ratio against the baseline, measured in the same run.
//
// Usage: decoder-bench SECONDS FILE...   prints "name<TAB>best milliseconds per decode" per file.

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
            let decoder = try PNGDecoder(bytes: bytes)
            var pixels = [UInt8](repeating: 0, count: decoder.outputByteCount())
            var best = Duration.seconds(1_000)
            let deadline = clock.now + .milliseconds(Int(seconds * 1000))
            repeat {
                let elapsed = try clock.measure {
                    try pixels.withUnsafeMutableBytes { try decoder.decode(into: $0) }
                }
                best = min(best, elapsed)
            } while clock.now < deadline
            let milliseconds = Double(best.components.attoseconds) / 1e15 + Double(best.components.seconds) * 1000
            print("\(URL(fileURLWithPath: path).lastPathComponent)\t\(String(format: "%.3f", milliseconds))")
        }
    }
}
