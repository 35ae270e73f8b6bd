import Glibc
import Testing
import VolatileCacheTesting
@testable import volatile_stress

// The volatile-stress tool: option parsing, the content generator it verifies against, and a
// short real run (no sandbox) with injected drops.

/// The `NAME key=value ...` lines volatile-stress prints.
struct StressToolOutput {
    let lines: [String]

    init(_ text: String) {
        lines = text.split(separator: "\n").map(String.init)
    }

    /// The fields of the last line starting with `name ` (for example "STRESS").
    func fields(_ name: String) -> [String: String]? {
        guard let line = lines.last(where: { $0.hasPrefix(name + " ") }) else { return nil }
        var fields: [String: String] = [:]
        for pair in line.dropFirst(name.count + 1).split(separator: " ") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            fields[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return fields
    }

    /// An integer field of the last `name` line, or nil.
    func number(_ name: String, _ key: String) -> Int? {
        fields(name)?[key].flatMap { Int($0) }
    }

    /// Whether `line` has exactly the STRESS format of the issue.
    static func isExactStressLine(_ line: String) -> Bool {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        let keys = ["pins", "drops_detected", "regenerations", "corrupt", "errors"]
        guard parts.count == 7, parts[0] == "STRESS" else { return false }
        for (part, key) in zip(parts[1...5], keys) {
            guard part.hasPrefix(key + "="), let value = Int(part.dropFirst(key.count + 1)), value >= 0 else { return false }
        }
        return parts[6].hasPrefix("strategy=") && parts[6].count > "strategy=".count
    }
}

/// Runs an executable without a sandbox; standard output and error go to temporary files.
struct ToolRun {
    var status: Int32
    var standardOutput: String
    var standardError: String

    static func run(_ path: String, _ arguments: [String]) throws -> ToolRun {
        try Running(path, arguments).finish()
    }

    /// A started process; ``finish()`` waits for it.
    final class Running {
        let pid: pid_t
        private let output: TemporaryFile
        private let errors: TemporaryFile

        init(_ path: String, _ arguments: [String]) throws {
            output = try TemporaryFile()
            errors = try TemporaryFile()
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, output.descriptor, 1)
            posix_spawn_file_actions_adddup2(&actions, errors.descriptor, 2)
            let argv = ([path] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
            guard spawned == 0 else { throw SpawnError(code: spawned) }
            self.pid = pid
        }

        func finish() -> ToolRun {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return ToolRun(status: exitStatus, standardOutput: output.contents(), standardError: errors.contents())
        }
    }

    struct SpawnError: Error { var code: Int32 }

    final class TemporaryFile {
        let path: String
        let descriptor: Int32

        init() throws {
            var template = Array("/tmp/volatile-stress-test-XXXXXX".utf8CString)
            descriptor = mkstemp(&template)
            guard descriptor >= 0 else { throw SpawnError(code: errno) }
            path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

        func contents() -> String {
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            lseek(descriptor, 0, SEEK_SET)
            while true {
                let count = read(descriptor, &chunk, chunk.count)
                if count <= 0 { break }
                bytes += chunk[..<count]
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        deinit {
            close(descriptor)
            unlink(path)
        }
    }
}

/// The built tool, next to the test binary (the test target depends on it).
func stressToolPath() throws -> String {
    try #require(
        MemoryPressureSandbox.siblingExecutable(named: "volatile-stress"),
        "volatile-stress is not built next to the test binary")
}

@Suite struct StressOptionsTests {
    @Test func parsesEveryOption() throws {
        let options = try StressOptions.parse([
            "--seconds", "2.5", "--threads", "3", "--working-set-mib", "96", "--strategy", "canary",
            "--inject-drops-per-second", "7", "--memory-limit-mib=128", "--halve-limit-after-seconds", "1",
            "--store", "heap", "--hot-budget-mib", "8", "--seed", "42", "--no-pressure-monitor", "--no-progress",
        ])
        var expected = StressOptions()
        expected.seconds = 2.5
        expected.threads = 3
        expected.workingSetMiB = 96
        expected.strategy = .canary
        expected.injectDropsPerSecond = 7
        expected.memoryLimitMiB = 128
        expected.halveLimitAfterSeconds = 1
        expected.store = .heap
        expected.hotBudgetMiB = 8
        expected.seed = 42
        expected.monitorsPressure = false
        expected.progress = false
        #expect(options == expected)
        #expect(try StressOptions.parse([]) == StressOptions())
    }

    @Test(arguments: [
        (["--bogus"], StressOptionsError.unknownOption("--bogus")),
        (["--threads"], .missingValue(option: "--threads")),
        (["--threads", "0"], .invalidValue(option: "--threads", value: "0", expected: "an integer from 1 to 256")),
        (["--seconds", "soon"], .invalidValue(option: "--seconds", value: "soon", expected: "a number from 0 to 86400")),
        (["--strategy", "mincore"], .invalidValue(option: "--strategy", value: "mincore", expected: "one of automatic, userfaultfd, canary")),
        (["--store", "disk"], .invalidValue(option: "--store", value: "disk", expected: "one of cache, heap")),
        (["--seed", "-1"], .invalidValue(option: "--seed", value: "-1", expected: "an integer from 0 to \(UInt64.max)")),
        (["--memory-limit-mib", "4"], .invalidValue(option: "--memory-limit-mib", value: "4", expected: "an integer from 8 to \(1 << 30)")),
        (["--halve-limit-after-seconds", "2"], .requires(option: "--halve-limit-after-seconds", other: "--memory-limit-mib")),
        (["--help"], .helpRequested),
    ])
    func rejectsBadArguments(_ arguments: [String], _ expected: StressOptionsError) {
        #expect(throws: expected) { _ = try StressOptions.parse(arguments) }
    }

    @Test func childArgumentsReproduceTheOptionsWithoutTheSandbox() throws {
        var options = try StressOptions.parse([
            "--seconds", "1.5", "--threads", "4", "--store", "heap", "--seed", "9", "--no-pressure-monitor",
            "--memory-limit-mib", "64", "--halve-limit-after-seconds", "1", "--inject-drops-per-second", "2.5",
        ])
        let child = try StressOptions.parse(options.childArguments)
        options.memoryLimitMiB = nil
        options.halveLimitAfterSeconds = nil
        #expect(child == options)
    }

    @Test func summaryLineAndExitStatus() {
        var summary = StressSummary(pins: 10, dropsDetected: 2, regenerations: 3, corrupt: 0, errors: 0, strategy: "canary")
        #expect(summary.line == "STRESS pins=10 drops_detected=2 regenerations=3 corrupt=0 errors=0 strategy=canary")
        #expect(summary.exitStatus == 0)
        summary.corrupt = 1
        #expect(summary.exitStatus == 1)
        summary.corrupt = 0
        summary.errors = 1
        #expect(summary.exitStatus == 1)
    }
}

@Suite struct ContentGeneratorTests {
    let generator = ContentGenerator(workingSetBytes: 64 << 20, seed: 7)

    @Test func sizesSpanTheRangeAndAddUpToTheWorkingSet() {
        #expect(generator.totalBytes >= 64 << 20)
        #expect(generator.totalBytes < (64 << 20) + StressOptions.largestObject)
        #expect(generator.sizes.allSatisfy { (StressOptions.smallestObject...StressOptions.largestObject).contains($0) })
        #expect(generator.sizes.contains { $0 < 64 << 10 })
        #expect(generator.sizes.contains { $0 > 1 << 20 })
        // Deterministic: the same seed gives the same objects, another seed others.
        #expect(ContentGenerator(workingSetBytes: 64 << 20, seed: 7).sizes == generator.sizes)
        #expect(ContentGenerator(workingSetBytes: 64 << 20, seed: 8).sizes != generator.sizes)
    }

    @Test func verifyAcceptsTheContentAndCatchesEveryKindOfDamage() throws {
        let key = try #require(generator.sizes.firstIndex { $0 > 40_000 && $0 % 4096 != 0 })
        let other = try #require(generator.sizes.indices.first { $0 != key && generator.sizes[$0] >= generator.sizes[key] })
        let size = generator.size(of: key)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        let otherBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: generator.size(of: other), alignment: 4096)
        defer {
            buffer.deallocate()
            otherBuffer.deallocate()
        }
        generator.fill(key, into: buffer)
        generator.fill(other, into: otherBuffer)
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer)) == nil)
        #expect(generator.verify(other, UnsafeRawBufferPointer(otherBuffer)) == nil)
        // Another key's content is not this key's.
        #expect(generator.verify(key, UnsafeRawBufferPointer(rebasing: otherBuffer[..<size])) != nil)

        // A dropped page (zeros), found at its first byte.
        buffer[8192..<12288].initializeMemory(as: UInt8.self, repeating: 0)
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer))?.offset == 8192)
        generator.fill(key, into: buffer, range: 8192..<12288)
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer)) == nil)

        // The page of another key at the same place (its header differs).
        buffer.baseAddress!.advanced(by: 4096).copyMemory(from: otherBuffer.baseAddress!.advanced(by: 4096), byteCount: 4096)
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer))?.offset == 4096)
        generator.fill(key, into: buffer, range: 4096..<8192)

        // One flipped bit in the last (partial) page.
        buffer[size - 1] ^= 0x10
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer))?.offset == (size - 1) / 4096 * 4096 + 8)
        buffer[size - 1] ^= 0x10

        // Two pages swapped within the object.
        let first = Array(buffer[0..<4096])
        buffer.baseAddress!.copyMemory(from: buffer.baseAddress!.advanced(by: 4096), byteCount: 4096)
        first.withUnsafeBytes { buffer.baseAddress!.advanced(by: 4096).copyMemory(from: $0.baseAddress!, byteCount: 4096) }
        #expect(generator.verify(key, UnsafeRawBufferPointer(buffer))?.offset == 0)

        // A wrong size.
        #expect(generator.verify(key, UnsafeRawBufferPointer(rebasing: buffer[..<(size - 1)])) != nil)
    }

    @Test func partialFillsMakeTheSameBytesAsAWholeFill() {
        let key = generator.sizes.firstIndex { $0 > 100_000 }!
        let size = generator.size(of: key)
        let whole = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        let pieces = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        defer {
            whole.deallocate()
            pieces.deallocate()
        }
        generator.fill(key, into: whole)
        pieces.initializeMemory(as: UInt8.self, repeating: 0)
        for start in stride(from: 0, to: size, by: 4096).reversed() {
            generator.fill(key, into: pieces, range: start..<min(start + 4096, size))
        }
        #expect(memcmp(whole.baseAddress!, pieces.baseAddress!, size) == 0)
    }
}

@Suite struct StressToolRunTests {
    @Test func usageErrorExitsWith64AndNamesTheOption() throws {
        let run = try ToolRun.run(try stressToolPath(), ["--threads", "0"])
        #expect(run.status == 64)
        #expect(run.standardError.contains("--threads"))
        #expect(run.standardOutput.isEmpty)
    }

    @Test func helpPrintsUsageAndExitsZero() throws {
        let run = try ToolRun.run(try stressToolPath(), ["--help"])
        #expect(run.status == 0)
        #expect(run.standardOutput.contains("--memory-limit-mib"))
    }

    /// A short run with injected drops: the cache detects them, regenerates, and every access
    /// verifies. No progress lines, as standard output is a file.
    @Test(arguments: ["automatic", "canary"])
    func shortRunWithInjectedDropsVerifiesEveryAccess(strategy: String) throws {
        let run = try ToolRun.run(try stressToolPath(), [
            "--seconds", "2", "--threads", "2", "--working-set-mib", "48", "--hot-budget-mib", "4",
            "--inject-drops-per-second", "20", "--strategy", strategy, "--no-pressure-monitor",
        ])
        #expect(run.status == 0, "\(run.standardOutput)\n\(run.standardError)")
        let output = StressToolOutput(run.standardOutput)
        #expect(output.lines.count == 2, "\(output.lines)")
        let last = try #require(output.lines.last)
        #expect(StressToolOutput.isExactStressLine(last), "\(last)")
        #expect(output.number("STRESS", "corrupt") == 0)
        #expect(output.number("STRESS", "errors") == 0)
        #expect((output.number("STRESS", "pins") ?? 0) > 100)
        #expect((output.number("STRESS", "drops_detected") ?? 0) > 0, "\(run.standardOutput)")
        #expect((output.number("STRESS", "regenerations") ?? 0) > 0)
        #expect((output.number("STATS", "injected_pages") ?? 0) > 0)
        // Every object was generated, and the regenerations that repaired only dropped pages
        // passed the whole-object check too.
        #expect(output.number("STATS", "generations") == output.number("STATS", "keys"))
        let used = output.fields("STRESS")?["strategy"]
        if strategy == "canary" {
            #expect(used == "canary")
        } else {
            #expect(used == "userfaultfd" || used == "canary")
        }
    }

    /// Another process drops the tool's pages (process_madvise MADV_PAGEOUT over all of its
    /// writable anonymous memory, as reclaim or a memory manager might): the tool detects the
    /// drops it did not make and every access still verifies.
    @Test func toleratesDropsMadeByAnotherProcess() throws {
        let tool = try ToolRun.Running(try stressToolPath(), [
            "--seconds", "3", "--working-set-mib", "48", "--hot-budget-mib", "4", "--no-pressure-monitor",
        ])
        let pageOut = ExternalPageOut(pid: tool.pid)
        var rounds = 0
        var refusal: Int32?
        let deadline = ContinuousClock.now + .milliseconds(2500)
        usleep(300_000)
        while ContinuousClock.now < deadline {
            refusal = pageOut.pageOutAnonymousMemory()
            if refusal != nil { break }
            rounds += 1
            usleep(50_000)
        }
        let run = tool.finish()
        #expect(run.status == 0, "\(run.standardOutput)\n\(run.standardError)")
        if let refusal {
            try Test.cancel("process_madvise(MADV_PAGEOUT) on another process is refused here (errno \(refusal)); it needs CAP_SYS_NICE")
        }
        let output = StressToolOutput(run.standardOutput)
        #expect(rounds > 5)
        #expect(output.number("STATS", "injections") == 0)
        #expect((output.number("STRESS", "drops_detected") ?? 0) > 0, "\(run.standardOutput)")
        #expect(output.number("STRESS", "corrupt") == 0)
        #expect(output.number("STRESS", "errors") == 0)
    }

    @Test func heapStoreRunsTheSameWorkloadWithoutDrops() throws {
        let run = try ToolRun.run(try stressToolPath(), ["--seconds", "1", "--working-set-mib", "16", "--store", "heap"])
        #expect(run.status == 0, "\(run.standardError)")
        let output = StressToolOutput(run.standardOutput)
        #expect(StressToolOutput.isExactStressLine(output.lines.last ?? ""))
        #expect(output.fields("STRESS")?["strategy"] == "heap")
        #expect(output.number("STRESS", "drops_detected") == 0)
        #expect((output.number("STRESS", "pins") ?? 0) > 100)
        #expect(output.number("STRESS", "corrupt") == 0)
    }
}

/// process_madvise(MADV_PAGEOUT) on another process's writable anonymous mappings (Linux 5.10,
/// CAP_SYS_NICE). Dirty pages stay (no swap); lazily freed (volatile) ones are dropped.
struct ExternalPageOut {
    let pid: pid_t
    private typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    private typealias ProcessMadvise = @convention(c) (Int32, UnsafePointer<iovec>, Int, Int32, UInt32) -> Int

    /// One pass over the mappings listed in /proc/<pid>/maps.
    /// - Returns: nil on success, or the errno of a refusal (ESRCH once the process is gone).
    func pageOutAnonymousMemory() -> Int32? {
        guard let openSymbol = dlsym(nil, "pidfd_open"), let adviseSymbol = dlsym(nil, "process_madvise") else {
            return ENOSYS
        }
        let pidfdOpen = unsafeBitCast(openSymbol, to: PidfdOpen.self)
        let processMadvise = unsafeBitCast(adviseSymbol, to: ProcessMadvise.self)
        let pidfd = pidfdOpen(pid, 0)
        guard pidfd >= 0 else { return errno }
        defer { close(pidfd) }
        guard let maps = fopen("/proc/\(pid)/maps", "r") else { return errno }
        defer { fclose(maps) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), maps) != nil {
            let text = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            // Anonymous (no path), writable or inaccessible: the arena's regions are among
            // these (volatile extents are `---p` under the debug use-after-unpin trap).
            guard fields.count == 5, fields[1].contains("w") || fields[1] == "---p" else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else { continue }
            var range = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: start), iov_len: Int(end - start))
            if processMadvise(pidfd, &range, 1, 21 /* MADV_PAGEOUT */, 0) < 0 {
                let code = errno
                if code == EPERM || code == ENOSYS || code == ESRCH { return code }
            }
        }
        return nil
    }
}
