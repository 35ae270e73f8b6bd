/// Which cache the server puts in front of the decoder.
public enum CacheMode: String, CaseIterable, Sendable, Codable {
    /// `VolatileCache`: thumbnails live in memory the kernel may take back.
    case volatile
    /// Foundation's `NSCache` with no limits.
    case nscache
    /// `NSCache` with `totalCostLimit` fitted to the memory limit by hand (cost = bytes).
    case nscacheTuned = "nscache-tuned"
    /// No cache: every request decodes.
    case none
    /// A fixed dictionary decoded at start-up (`--preload-sizes`): the CPU baseline.
    case preloaded
}

/// The command line, parsed.
public struct ServerOptions: Sendable, Equatable {
    /// The cache.
    public var cache: CacheMode = .volatile
    /// The address to listen on. Defaults to loopback.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one (printed on the LISTENING line).
    public var port = 8080
    /// Hot-set budget of the volatile cache; nil keeps the cache's default (64 MiB).
    public var hotMiB: Int?
    /// Run in a memory cgroup with this limit, through `MemoryPressureSandbox`.
    public var memoryLimitMiB: Int?
    /// The photo folder; nil for the image-decoder demo's sample photos.
    public var photosPath: String?
    /// Sizes the `preloaded` cache decodes at start-up, for every photo.
    public var preloadSizes: [Size] = [Size(width: 64, height: 64), Size(width: 128, height: 128), Size(width: 256, height: 256)]
    /// `nscache-tuned`: the cost limit, replacing the computed one.
    public var nscacheCostLimitMiB: Int?
    /// Exit after this many seconds (a safety net for scripts); nil runs until a signal.
    public var lifetimeSeconds: Int?
    /// Internal: this process is the sandboxed child.
    public var inSandbox = false
    /// Print the usage and exit.
    public var showHelp = false

    /// A width and height.
    public struct Size: Sendable, Equatable {
        /// Width in pixels.
        public var width: Int
        /// Height in pixels.
        public var height: Int
        /// Creates a size.
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
    }

    /// Creates the default options.
    public init() {}

    /// The usage text.
    public static let usage = """
        thumbnail-server: an HTTP thumbnail server on VolatileCache (Hummingbird 2)

        USAGE: thumbnail-server [options]

        ROUTES:
          GET /photos/{name}/{width}x{height}   the photo scaled to width x height (1 to \(Thumbnail.maximumEdge) each),
                                                as an uncompressed 32-bit BMP (image/bmp)
          GET /stats                            cache and server figures, JSON
          GET /metrics                          the same figures, Prometheus text exposition

        OPTIONS:
          --cache volatile|nscache|nscache-tuned|none|preloaded
                                  The cache in front of the decoder (default: volatile).
                                    volatile       VolatileCache (memory the kernel may take back)
                                    nscache        NSCache with no limits
                                    nscache-tuned  NSCache with totalCostLimit fitted to the memory limit
                                    none           decode on every request
                                    preloaded      a fixed dictionary of --preload-sizes (CPU baseline)
          --host ADDRESS          Listen address (default: 127.0.0.1).
          --port N                Port (default: 8080; 0 picks a free one).
          --hot-mib N             Hot-set budget of the volatile cache (default: 64).
          --memory-limit-mib N    Run in a memory cgroup limited to N MiB (MemoryPressureSandbox; needs
                                  root or a delegated cgroup, else it says why and runs unlimited).
          --photos DIR            Folder of PNG photos (default: Examples/ImageDecoderDemo/Photos).
          --preload-sizes LIST    Sizes for --cache preloaded, e.g. 64x64,128x96 (default: 64x64,128x128,256x256).
          --nscache-cost-limit-mib N
                                  Cost limit for nscache-tuned instead of the computed one.
          --lifetime-seconds S    Exit after S seconds.
          -h, --help              Show this help.

        OUTPUT: "LISTENING host:port cache=<name>" once the server accepts connections; with
          --memory-limit-mib, after the server ends:
          "SANDBOX oom=<true|false> peak_mib=<n> limit_mib=<n> termination=<how>".
        """

    /// A command-line error.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        /// The message.
        public var description: String
    }

    /// Parses `arguments` (without the program name).
    /// - Parameter arguments: The arguments.
    /// - Returns: The options.
    /// - Throws: ``ParseError`` naming the bad argument.
    public static func parse(_ arguments: [String]) throws(ParseError) -> ServerOptions {
        var options = ServerOptions()
        var index = 0
        func value(_ name: String) throws(ParseError) -> String {
            index += 1
            guard index < arguments.count else { throw ParseError(description: "\(name) needs a value") }
            return arguments[index]
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(ParseError) -> Int {
            let text = try value(name)
            guard let number = Int(text), range.contains(number) else {
                throw ParseError(description: "\(name) needs an integer from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
            }
            return number
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--cache":
                let text = try value(argument)
                guard let mode = CacheMode(rawValue: text) else {
                    throw ParseError(description: "--cache must be one of \(CacheMode.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
                }
                options.cache = mode
            case "--host": options.host = try value(argument)
            case "--port": options.port = try integer(argument, 0...65535)
            case "--hot-mib": options.hotMiB = try integer(argument, 0...(1 << 20))
            case "--memory-limit-mib": options.memoryLimitMiB = try integer(argument, 16...(1 << 30))
            case "--photos": options.photosPath = try value(argument)
            case "--preload-sizes":
                let text = try value(argument)
                var sizes: [Size] = []
                for part in text.split(separator: ",") {
                    guard let size = Thumbnail.parseSize(part) else {
                        throw ParseError(description: "--preload-sizes: \"\(part)\" is not WIDTHxHEIGHT (1 to \(Thumbnail.maximumEdge) each)")
                    }
                    sizes.append(Size(width: size.width, height: size.height))
                }
                guard !sizes.isEmpty else { throw ParseError(description: "--preload-sizes needs at least one size") }
                options.preloadSizes = sizes
            case "--nscache-cost-limit-mib": options.nscacheCostLimitMiB = try integer(argument, 1...(1 << 20))
            case "--lifetime-seconds": options.lifetimeSeconds = try integer(argument, 1...(7 * 86_400))
            case "--in-sandbox": options.inSandbox = true
            case "-h", "--help": options.showHelp = true
            default: throw ParseError(description: "unknown argument \"\(argument)\" (see --help)")
            }
            index += 1
        }
        return options
    }

    /// The arguments that make a sandboxed child serve with these options.
    /// - Returns: The child's arguments.
    func childArguments() -> [String] {
        var arguments = ["--cache", cache.rawValue, "--host", host, "--port", String(port), "--in-sandbox"]
        if let hotMiB { arguments += ["--hot-mib", String(hotMiB)] }
        // The child's tuned NSCache is fitted to the parent's limit.
        if let memoryLimitMiB { arguments += ["--memory-limit-mib", String(memoryLimitMiB)] }
        if let photosPath { arguments += ["--photos", photosPath] }
        arguments += ["--preload-sizes", preloadSizes.map { "\($0.width)x\($0.height)" }.joined(separator: ",")]
        if let nscacheCostLimitMiB { arguments += ["--nscache-cost-limit-mib", String(nscacheCostLimitMiB)] }
        if let lifetimeSeconds { arguments += ["--lifetime-seconds", String(lifetimeSeconds)] }
        return arguments
    }
}
