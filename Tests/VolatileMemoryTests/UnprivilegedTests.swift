import Foundation
import Testing
@testable import VolatileMemory

/// The unprivileged path for real: the test binary re-runs itself as uid 65534 (through
/// `setpriv`), where the kernel refuses full userfaultfd (vm.unprivileged_userfaultfd=0) and
/// grants UFFD_USER_MODE_ONLY. The child reports what `.automatic` picked and what a pin found.
@Suite("Unprivileged processes")
struct UnprivilegedTests {
    static let probeVariable = "VOLATILE_MEMORY_UNPRIVILEGED_PROBE"

    /// The child's side: a no-op in a normal run.
    @Test("unprivilegedProbeEntryPoint (runs only in the re-entered child)")
    func unprivilegedProbeEntryPoint() throws {
        guard ProcessInfo.processInfo.environment[Self.probeVariable] == "1" else { return }
        var line = "PROBE uid=\(getuid())"
        do {
            let arena = try VolatileArena(configuration: .init(regionByteCount: 16 << 20))
            var pinned = try arena.allocate(byteCount: 8 * arena.pageSize)
            pinned.withUnsafeMutableBytes { fill($0, seed: 11) }
            let volatile = pinned.unpin()
            try volatile.dropPages([2, 5])
            let repinned = try volatile.pin().get()
            let intactElsewhere = repinned.withUnsafeBytes { bytes in
                let words = bytes.bindMemory(to: UInt64.self)
                let perPage = arena.pageSize / 8
                return (0..<words.count).allSatisfy { index in
                    let page = index / perPage
                    return page == 2 || page == 5 ? words[index] == 0 : words[index] == expectedWord(seed: 11, index: index)
                }
            }
            line += " mechanism=\(arena.detection.mechanism) report=\(repinned.report.droppedPages) verified=\(intactElsewhere)"
        } catch {
            line += " error=\(error)"
        }
        // Write directly: exit() follows, and the harness must not print its summary after it.
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        exit(0)
    }

    @Test("As an unprivileged user, automatic gets user-mode-only userfaultfd and detects drops exactly")
    func unprivilegedUserGetsUserModeOnly() throws {
        guard getuid() == 0 else {
            // Already unprivileged: the in-process tests cover this user's path.
            return
        }
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else {
            Issue.record("setpriv (util-linux) is needed to drop privileges")
            return
        }
        let sysctl = (try? String(contentsOfFile: "/proc/sys/vm/unprivileged_userfaultfd", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Copy the test binary where uid 65534 can run it (the build folder may be private).
        let executable = try #require(Bundle.main.executableURL).resolvingSymlinksInPath()
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("volatile-probe-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent(executable.lastPathComponent)
        try FileManager.default.copyItem(at: executable, to: copy)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy.path)

        // Another test's child, forked while the copy was open for writing, may hold that
        // descriptor for a moment: exec then fails with ETXTBSY ("Text file busy"). Retry.
        var text = ""
        for attempt in 0..<10 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = [
                "--reuid=65534", "--regid=65534", "--clear-groups", copy.path,
                "--testing-library", "swift-testing", "--filter", "unprivilegedProbeEntryPoint",
            ]
            process.environment = ProcessInfo.processInfo.environment.merging([Self.probeVariable: "1", "HOME": "/tmp"]) { $1 }
            process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            text = String(decoding: data, as: UTF8.self)
            guard text.contains("Text file busy"), attempt < 9 else { break }
            usleep(200_000)
        }
        let line = try #require(text.split(separator: "\n").last { $0.hasPrefix("PROBE") }, "child said: \(text)")
        #expect(line.contains("uid=65534"))
        if sysctl == "0" {
            // Before 5.11 there is no UFFD_USER_MODE_ONLY: an unprivileged process gets canaries.
            let expected = KernelVersion.running >= KernelVersion.userModeOnlyUserfaultfd ? "userfaultfd(userModeOnly)" : "canary"
            #expect(line.contains("mechanism=\(expected)"), "\(line)")
        }
        #expect(line.contains("report=[2, 5]"), "\(line)")
        #expect(line.contains("verified=true"), "\(line)")
    }
}
