import Foundation
import Testing
import VolatileCacheTesting

/// End-to-end checks of the `image-decoder-demo` executable with tiny settings (a gallery of a
/// few MiB, fractions of a second per run). Needs the test target to depend on the
/// `ImageDecoderDemo` target, so that the binary is built next to the test bundle.
@Suite("image-decoder-demo")
struct ImageDecoderDemoTests {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
        var lines: [Substring] { output.split(separator: "\n") }
        var resultFields: [String: String] {
            guard let last = lines.last, last.hasPrefix("RESULT ") else { return [:] }
            return fields(last)
        }
    }

    static func fields(_ line: Substring) -> [String: String] {
        var values: [String: String] = [:]
        for field in line.split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    func demo(_ arguments: [String]) throws -> Run {
        let path = try #require(
            MemoryPressureSandbox.siblingExecutable(named: "image-decoder-demo"),
            "image-decoder-demo is not built next to the tests (the test target must depend on ImageDecoderDemo)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Small outputs: read both to the end, then reap.
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            errors: String(decoding: errorData, as: UTF8.self))
    }

    static let tiny = ["--seconds", "0.3", "--gallery-mib", "4"]

    @Test("every cache runs, verifies its bytes and accounts each access as a hit or a decode",
          arguments: ["volatile", "volatile-lru", "nscache", "nscache-tuned", "none"])
    func singleRun(cache: String) throws {
        let run = try demo(["--no-sandbox", "--cache", cache] + Self.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let result = run.resultFields
        #expect(result["cache"] == cache)
        #expect(result["oom"] == "false")
        let accesses = try #require(result["accesses"].flatMap { Int($0) })
        let hits = try #require(result["hits"].flatMap { Int($0) })
        let regenerations = try #require(result["regenerations"].flatMap { Int($0) })
        #expect(accesses > 0)
        #expect(hits + regenerations == accesses)
        if cache == "none" { #expect(hits == 0) }
        // Issue 15: `volatile` runs the adaptive policy by default, `volatile-lru` LRU.
        if cache == "volatile" { #expect(run.output.contains("policy adaptive"), "\(run.output)") }
        if cache == "volatile-lru" { #expect(run.output.contains("policy lru"), "\(run.output)") }
        #expect(run.lines.contains { $0.hasPrefix("verify failures") && $0.hasSuffix(" 0") })
        // Not on a terminal: one SAMPLE line at the start and one at the end at least.
        #expect(run.lines.filter { $0.hasPrefix("SAMPLE t=") }.count >= 2)
    }

    @Test("--compare runs all four caches in child processes and writes the chart")
    func compare() throws {
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(getpid()).svg").path
        defer { try? FileManager.default.removeItem(atPath: svg) }
        let run = try demo(["--compare", "--no-sandbox", "--svg", svg] + Self.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let results = run.lines.filter { $0.hasPrefix("RESULT ") }.map { Self.fields($0)["cache"] ?? "" }
        #expect(results == ["volatile", "volatile-lru", "nscache", "nscache-tuned", "none"])
        #expect(run.lines.last?.hasPrefix("RESULT cache=none ") == true)
        let chart = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(chart.hasPrefix("<svg"))
        #expect(chart.components(separatedBy: "<polyline").count - 1 >= 10)  // 2 panels × 5 caches (+ dashed)
        #expect(run.lines.contains { $0.hasPrefix("goal: not evaluated") })
    }

    @Test("a run in the memory sandbox reports the cgroup's verdict", .requiresMemoryPressureSandbox)
    func sandboxed() throws {
        let run = try demo(["--cache", "volatile", "--memory-limit-mib", "96"] + Self.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let verdict = try #require(run.lines.first { $0.hasPrefix("sandbox") }, "\(run.output)")
        #expect(verdict.contains("limit 96 MiB"))
        #expect(verdict.contains("OOM kills 0"), "\(verdict)")
        #expect(verdict.contains("finished (exited(0))"), "\(verdict)")
        #expect(run.resultFields["oom"] == "false")
        #expect((run.resultFields["accesses"].flatMap { Int($0) } ?? 0) > 0)
    }

    @Test("bad arguments exit with status 2 and say what is wrong")
    func badArguments() throws {
        let run = try demo(["--cache", "memcached"])
        #expect(run.status == 2)
        #expect(run.errors.contains("--cache must be one of"))
        let policy = try demo(["--policy", "lfu"])
        #expect(policy.status == 2)
        #expect(policy.errors.contains("--policy must be one of lru, adaptive"))
        let help = try demo(["--help"])
        #expect(help.status == 0 && help.output.contains("--compare"))
    }

    @Test("a missing photo folder is a clear error")
    func missingPhotos() throws {
        let run = try demo(["--no-sandbox", "--photos", "/nonexistent-photos"] + Self.tiny)
        #expect(run.status == 1)
        #expect(run.errors.contains("--photos /nonexistent-photos"))
    }
}
