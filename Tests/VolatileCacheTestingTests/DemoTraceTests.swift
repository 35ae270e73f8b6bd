import Foundation
import Testing

// Issue 15: `image-decoder-demo --trace PATH` records every access for volatile-policy-sim.
@Suite("image-decoder-demo --trace")
struct DemoTraceTests {
    @Test("writes one `index byteCount` line per access and the resident bytes at the end")
    func traceMatchesTheRun() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("demo-trace-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try ImageDecoderDemoTests().demo(["--no-sandbox", "--trace", path] + ImageDecoderDemoTests.tiny)
        #expect(run.status == 0, "\(run.errors)")
        let accesses = try #require(run.resultFields["accesses"].flatMap { Int($0) })
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        let records = lines.filter { !$0.hasPrefix("#") }
        #expect(records.count == accesses)
        var sizes: [Int: Int] = [:]
        for record in records {
            let fields = record.split(separator: " ")
            let index = try #require(fields.count == 2 ? Int(fields[0]) : nil, "bad line \(record)")
            let size = try #require(Int(fields[1]))
            #expect(size > 0)
            // An item has one size.
            #expect(sizes.updateValue(size, forKey: index).map { $0 == size } ?? true)
        }
        let last = try #require(lines.last)
        #expect(last.hasPrefix("# resident_bytes="))
        #expect(ImageDecoderDemoTests.fields(last)["accesses"] == String(accesses))
    }
}
