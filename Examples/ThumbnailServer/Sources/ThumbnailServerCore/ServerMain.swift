import Dispatch
import Glibc
import Synchronization
import VolatileCacheTesting

/// The process: parse the options, then either serve here, or (with `--memory-limit-mib`)
/// re-run this executable as a child in a memory cgroup and report how it ended.
public enum ServerMain {
    /// Runs the server with `arguments` (without the program name).
    /// - Parameter arguments: The command line.
    /// - Returns: The exit status: 0 after a clean stop, 1 on an error, 2 for a bad command line,
    ///   137 when the OOM killer ended the sandboxed server.
    public static func run(_ arguments: [String]) async -> Int32 {
        let options: ServerOptions
        do {
            options = try ServerOptions.parse(arguments)
        } catch {
            Output.error("thumbnail-server: \(error)")
            return 2
        }
        if options.showHelp {
            Output.line(ServerOptions.usage)
            return 0
        }
        if let limit = options.memoryLimitMiB, !options.inSandbox {
            switch MemoryPressureSandbox.availability {
            case .available:
                return await runSandboxed(options, limitMiB: limit)
            case .unavailable(let reason):
                Output.error("thumbnail-server: no memory cgroup (\(reason)); serving without a memory limit")
            }
        }
        return await serve(options)
    }

    /// Serves in this process until a signal (or the lifetime) ends it.
    static func serve(_ options: ServerOptions) async -> Int32 {
        let service: ThumbnailService
        do {
            let folder = try options.photosPath ?? PhotoStore.defaultFolder()
            let photos = try PhotoStore(folder: folder)
            service = try ThumbnailService(options: options, photos: photos)
            Output.line("thumbnail-server: \(photos.photos.count) photos from \(folder); \(service.provider.configurationNote)")
        } catch {
            Output.error("thumbnail-server: \(error)")
            return 1
        }
        let host = options.host
        let mode = options.cache
        let app = ThumbnailRoutes.makeApplication(service: service, host: host, port: options.port) { port in
            Output.line("LISTENING \(host):\(port) cache=\(mode.rawValue)")
        }
        if let lifetime = options.lifetimeSeconds {
            Task.detached {
                try? await Task.sleep(for: .seconds(lifetime))
                Output.line("thumbnail-server: lifetime of \(lifetime) s over, exiting")
                exit(0)
            }
        }
        do {
            try await app.runService()
            return 0
        } catch {
            Output.error("thumbnail-server: \(error)")
            return 1
        }
    }

    /// Runs the server as a child in a memory cgroup limited to `limitMiB`, copying its output
    /// to standard error, and prints the SANDBOX line when it ends. SIGINT and SIGTERM kill it.
    static func runSandboxed(_ options: ServerOptions, limitMiB: Int) async -> Int32 {
        let process: SandboxedProcess
        do {
            let sandbox = try MemoryPressureSandbox()
            let executable = try MemoryPressureSandbox.currentExecutablePath()
            // The sandbox's timeout is the backstop for --lifetime-seconds.
            process = try sandbox.start(
                .executable(executable, arguments: options.childArguments()), memoryLimit: limitMiB << 20,
                timeout: options.lifetimeSeconds.map { .seconds($0 + 30) }, teeOutput: true)
        } catch {
            Output.error("thumbnail-server: cannot start the server in a memory cgroup: \(error)")
            return 1
        }
        let stopRequested = StopFlag()
        let sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                stopRequested.value.store(true, ordering: .relaxed)
                process.kill()
            }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        let result: SandboxResult
        do {
            result = try await process.result()
        } catch {
            Output.error("thumbnail-server: the sandboxed server failed: \(error)")
            return 1
        }
        let peak = result.peakMemoryBytes.map { String($0 >> 20) } ?? "unknown"
        Output.line("SANDBOX oom=\(result.wasOOMKilled) peak_mib=\(peak) limit_mib=\(limitMiB) termination=\(result.termination)")
        if result.wasOOMKilled { return 137 }
        switch result.termination {
        case .exited(let code): return code
        case .signaled where stopRequested.value.load(ordering: .relaxed): return 0
        default: return 1
        }
    }
}

/// Set when a signal asked the sandboxed server to stop (so its SIGKILL is not a failure).
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Unbuffered output: a sandboxed server may be killed at any moment, and lines still in a
/// stdio buffer would be lost with it.
enum Output {
    /// Writes `text` and a newline to standard output.
    static func line(_ text: String) { write(text + "\n", to: 1) }

    /// Writes `text` and a newline to standard error.
    static func error(_ text: String) { write(text + "\n", to: 2) }

    private static func write(_ text: String, to fd: Int32) {
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
