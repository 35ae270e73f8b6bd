#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import VolatileCache
import VolatileMemory

/// Issue 12, item 6: with `debugProtectUnpinned`, a pointer used after its object was
/// unpinned (or removed) faults at once, and the process dies naming the fault.
@Suite struct DebugProtectionTests {
    static let childVariable = "VOLATILE_DEBUG_TRAP_CHILD"

    private func makeProtectedCache(canary: Bool = false) throws -> VolatileCache<Int> {
        var configuration = VolatileCache<Int>.Configuration(hotByteLimit: 0)
        configuration.debugProtectUnpinned = true
        configuration.arena.regionByteCount = 16 << 20
        if canary { configuration.arena.strategy = .canary }
        return try VolatileCache<Int>(configuration: configuration)
    }

    @Test func onByDefaultInDebugBuildsOnly() {
        #if DEBUG
        #expect(VolatileCache<Int>.Configuration().debugProtectUnpinned)
        #else
        #expect(!VolatileCache<Int>.Configuration().debugProtectUnpinned)
        #endif
        #expect(!VolatileArena.Configuration().debugProtectsUnpinned, "the memory layer alone: opt-in")
    }

    /// Volatile (PROT_NONE) and back: content intact, drops still detected, both strategies.
    @Test(arguments: [false, true]) func repinRestoresAccessAndDropsAreStillDetected(canary: Bool) throws {
        let cache = try makeProtectedCache(canary: canary)
        #expect(cache.arena.debugProtection != nil)
        let counter = Counter()
        for key in 0..<8 { #expect(try read(cache, key, byteCount: 5 * page + 24, counter: counter)) }
        #expect(cache.statistics.volatileBytes > 0, "hot budget 0: everything released is volatile")
        for key in 0..<8 { #expect(try read(cache, key, byteCount: 5 * page + 24, counter: counter)) }
        #expect(counter.count == 8, "intact re-pins regenerate nothing")
        // Real drops on protected pages: detected and regenerated.
        #expect(try cache.arena.dropAllVolatilePages() > 0)
        for key in 0..<8 { #expect(try read(cache, key, byteCount: 5 * page + 24, counter: counter)) }
        #expect(counter.count > 8)
        cache.removeAll()
        #expect(cache.arena.residentBytesInRegions() == 0)
    }

    /// Runs in the child (`VOLATILE_DEBUG_TRAP_CHILD` set): escapes a pointer and uses it
    /// after its object was made volatile (or removed). Returns at once in a normal run.
    @Test func debugTrapChildEntryPoint() throws {
        guard let mode = getenv(Self.childVariable).map({ String(cString: $0) }) else { return }
        let cache = try makeProtectedCache()
        try cache.insert(forKey: 1, byteCount: 3 * page) { fill($0, seed: 1) }
        let escaped = try cache.withBytes(forKey: 1) { $0.baseAddress! + page + 8 }!
        switch mode {
        case "volatile": cache.shed()
        default: cache.removeValue(forKey: 1)
        }
        let line = "child: escaped pointer 0x\(String(UInt(bitPattern: escaped), radix: 16))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        let value = escaped.load(as: UInt64.self)  // faults here
        print("child: read \(value) through an unpinned pointer")
        exit(3)
    }

    @Test(arguments: ["volatile", "removed"]) func useAfterUnpinDiesWithAMessage(mode: String) throws {
        let result = try runChild(filter: "debugTrapChildEntryPoint", environment: [Self.childVariable: mode])
        let escapedLine = result.errors.split(separator: "\n").first { $0.hasPrefix("child: escaped pointer 0x") }
        let address = try #require(escapedLine.map { String($0.dropFirst("child: escaped pointer 0x".count)) })
        let padded = String(repeating: "0", count: max(0, 16 - address.count)) + address
        #expect(result.errors.contains("access to an unpinned VolatileCache object at 0x\(padded)"), "\(result.errors)")
        if runningUnderAddressSanitizer || runningUnderThreadSanitizer {
            // The sanitizer's own SIGSEGV handler was there first: the trap hands the fault back
            // to it, and it reports the deadly signal and exits with a status instead.
            #expect(result.signal == SIGSEGV || (result.status != 0 && result.errors.contains("SEGV")),
                    "died of the fault (status \(result.status))")
        } else {
            #expect(result.signal == SIGSEGV, "died by SIGSEGV (status \(result.status))")
        }
    }

    /// Spawns this test binary running only the tests matching `filter`; collects standard error.
    private func runChild(filter: String, environment: [String: String]) throws -> (errors: String, status: Int32, signal: Int32?) {
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        let arguments = ["/proc/self/exe", "--testing-library", "swift-testing", "--filter", filter]
        var variables = environment
        variables["SWIFT_BACKTRACE"] = "enable=no"  // the default action, without a slow backtrace
        for (name, value) in ProcessEnvironment.current() where variables[name] == nil { variables[name] = value }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, envp)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        try #require(spawned == 0)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(pipeEnds[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal: Int32? = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f ? status & 0x7f : nil
        return (String(decoding: bytes, as: UTF8.self), status, signal)
    }
}

/// The process's environment, as name → value.
enum ProcessEnvironment {
    static func current() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
