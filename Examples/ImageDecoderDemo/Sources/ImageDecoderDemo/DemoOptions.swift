import VolatileCache

/// Which cache the gallery workload runs with.
enum CacheKind: String, CaseIterable, Sendable {
    /// `VolatileCache`: decoded images live in memory the kernel may take back.
    case volatile
    /// Foundation's `NSCache` with no limits, as most code uses it.
    case nscache
    /// `NSCache` with `totalCostLimit` fitted to the memory limit by hand (cost = bytes).
    case nscacheTuned = "nscache-tuned"
    /// No cache: every access decodes into one reused buffer.
    case none
    /// `VolatileCache` with `Configuration.policy = .lru` (issue 15): what `--compare` runs next
    /// to `volatile`, whose policy is `--policy`. Same as `--cache volatile --policy lru`.
    case volatileLRU = "volatile-lru"
}

/// The command line, parsed.
struct DemoOptions: Sendable, Equatable {
    var cache: CacheKind = .volatile
    /// The memory limit for the sandbox, and the figure `nscache-tuned` is fitted to.
    var memoryLimitMiB = 256
    /// How long each workload runs.
    var seconds = 20.0
    var compare = false
    var svgPath = "gallery-compare.svg"
    var photosPath: String?
    /// Decoded size of the whole gallery; the tile size is chosen to reach it.
    var galleryMiB = 1024
    /// Zipf exponent of the access distribution (see `DemoOptions.defaultZipfExponent`).
    var zipfExponent = DemoOptions.defaultZipfExponent
    var seed: UInt64 = 0x5EED
    /// Hot-set budget of the volatile cache; nil keeps the cache's default.
    var hotMiB: Int?
    /// `Configuration.volatility` of the volatile cache (`--volatility`, issue 9).
    var volatility: Volatility = .automatic
    /// The swap the children run with (`--swap`), and the co-tenant burst (`--neighbour-*`).
    var swap: SwapMode = .none
    var neighbour = NeighbourBurst.Settings()
    /// Internal: this process is the neighbour; allocate, hold, free, exit.
    var isNeighbour = false
    /// Run in this process without a memory limit.
    var noSandbox = false
    /// Internal: this process is the sandboxed child; run the workload directly.
    var inSandbox = false
    /// Internal: write the progress line to this terminal (the parent's), since a sandboxed
    /// child's standard output and error are pipes.
    var progressTTY: String?
    var showHelp = false
    /// Write every access (`index byteCount`) to this file; with --compare, one file per cache.
    var tracePath: String?
    /// The volatile cache's residency policy (`--policy`).
    var policy: CachePolicy = .adaptive

    /// Zipf exponent 1.1: measured popularity of photos and web objects mostly falls between
    /// 0.8 and 1.2. With 1.1 over 704 images, the 100 most popular draw about 80 % of the
    /// accesses (with 1.0, 73 %): a cache that can keep those turns most accesses into hits.
    static let defaultZipfExponent = 1.1

    static let usage = """
        image-decoder-demo: an image gallery under memory pressure, with and without VolatileCache

        USAGE: image-decoder-demo [options]

        With no options, runs the gallery workload with the volatile cache for 20 s in a memory
        cgroup limited to 256 MiB (when cgroups can be created here), then prints a table and a
        RESULT line.

        OPTIONS:
          --cache volatile|nscache|nscache-tuned|none
                                  The cache to use (default: volatile).
                                    volatile       VolatileCache: decoded images live in memory the
                                                   kernel may take back (MADV_FREE), regenerated on drop
                                    nscache        NSCache with no limits
                                    nscache-tuned  NSCache whose totalCostLimit (cost = bytes) is fitted
                                                   to the memory limit
                                    none           decode on every access into a reused buffer
          --memory-limit-mib N    Run in a memory cgroup limited to N MiB (default: 256).
          --no-sandbox            Run in this process, without a memory limit.
          --seconds S             How long each workload runs (default: 20).
          --compare               Run every cache in turn under the same limit, print them side by
                                  side and write an SVG chart.
          --svg PATH              Where --compare writes its chart (default: gallery-compare.svg).
          --photos DIR            The folder of sample PNGs (default: Examples/ImageDecoderDemo/Photos
                                  of the source tree this binary was built from).
          --gallery-mib N         Decoded size of the gallery (default: 1024).
          --zipf S                Zipf exponent of the accesses (default: 1.1).
          --seed N                Seed of the access sequence (default: 24301).
          --hot-mib N             Hot-set budget of the volatile cache (default: the cache's).
          --volatility automatic|always|never
                                  What the volatile cache's idle images become (default: automatic:
                                  swappable when swap is usable, has room and swapping in is cheaper
                                  than decoding, else volatile; always: volatile; never: swappable).
          --policy lru|adaptive   The volatile cache's policy (default: adaptive, frequency per byte).
                                  --compare also runs volatile-lru (policy lru) next to volatile.
          --trace PATH            Write one line per access, "index byteCount", to PATH (with --compare,
                                  PATH.<cache>), for volatile-policy-sim to replay.
          --swap none|zram|file|machine
                                  Swap for the children (default: none, swap forbidden in the cgroup).
                                  zram and file set up 4 GiB of swap (zram lz4, or a swap file in
                                  /var/tmp) as root and remove it afterwards, also after SIGINT/SIGTERM
                                  and, after a SIGKILL, on the next start; machine uses the machine's.
          --neighbour-mib N       A second process in the same cgroup touches N MiB (default: 0, none),
          --neighbour-at S          starting S s into the workload (default: 5),
          --neighbour-seconds D     holds it for D s, then frees it and exits (default: 5).
          -h, --help              Show this help.

        OUTPUT: a progress line on a terminal; every half second (when not on a terminal) a line
          SAMPLE t=<s> accesses=<n> hits=<n> regenerations=<n> rss_mib=<n> anon_mib=<n> lazyfree_mib=<n> cache_mib=<n>
        then a table, and last
          RESULT cache=<name> accesses=<n> hits=<n> regenerations=<n> seconds=<s> swap=<mode>
                 [neighbour=<finished|killed|...>] oom=<true|false>
        """

    /// A command-line error, with the message to print.
    struct ParseError: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// Parses `arguments` (without the program name).
    /// - Parameter arguments: The arguments.
    /// - Returns: The options.
    /// - Throws: ``ParseError`` naming the bad argument.
    static func parse(_ arguments: [String]) throws(ParseError) -> DemoOptions {
        var options = DemoOptions()
        var index = 0
        func value(_ name: String) throws(ParseError) -> String {
            index += 1
            guard index < arguments.count else { throw ParseError(description: "\(name) needs a value") }
            return arguments[index]
        }
        func integer(_ name: String, minimum: Int) throws(ParseError) -> Int {
            let text = try value(name)
            guard let number = Int(text), number >= minimum else {
                throw ParseError(description: "\(name) needs an integer >= \(minimum), not \"\(text)\"")
            }
            return number
        }
        while index < arguments.count {
            var argument = arguments[index]
            // Accept --name=value too.
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                let inline = String(argument[argument.index(after: equals)...])
                argument = String(argument[..<equals])
                var rewritten = arguments
                rewritten[index] = argument
                rewritten.insert(inline, at: index + 1)
                return try parse(rewritten)
            }
            switch argument {
            case "--cache":
                let text = try value(argument)
                guard let kind = CacheKind(rawValue: text) else {
                    throw ParseError(description: "--cache must be one of \(CacheKind.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
                }
                options.cache = kind
            case "--memory-limit-mib": options.memoryLimitMiB = try integer(argument, minimum: 16)
            case "--no-sandbox": options.noSandbox = true
            case "--seconds":
                let text = try value(argument)
                guard let seconds = Double(text), seconds > 0, seconds <= 86_400 else {
                    throw ParseError(description: "--seconds needs a positive number, not \"\(text)\"")
                }
                options.seconds = seconds
            case "--compare": options.compare = true
            case "--svg": options.svgPath = try value(argument)
            case "--photos": options.photosPath = try value(argument)
            case "--gallery-mib": options.galleryMiB = try integer(argument, minimum: 1)
            case "--zipf":
                let text = try value(argument)
                guard let exponent = Double(text), exponent >= 0, exponent <= 10 else {
                    throw ParseError(description: "--zipf needs a number between 0 and 10, not \"\(text)\"")
                }
                options.zipfExponent = exponent
            case "--seed":
                let text = try value(argument)
                guard let seed = UInt64(text) else { throw ParseError(description: "--seed needs an unsigned integer, not \"\(text)\"") }
                options.seed = seed
            case "--hot-mib": options.hotMiB = try integer(argument, minimum: 0)
            case "--volatility":
                let text = try value(argument)
                switch text {
                case "automatic": options.volatility = .automatic
                case "always": options.volatility = .always
                case "never": options.volatility = .never
                default: throw ParseError(description: "--volatility must be one of automatic, always, never, not \"\(text)\"")
                }
            case "--swap":
                let text = try value(argument)
                guard let mode = SwapMode(rawValue: text) else {
                    throw ParseError(description: "--swap must be one of \(SwapMode.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
                }
                options.swap = mode
            case "--neighbour-mib": options.neighbour.mebibytes = try integer(argument, minimum: 0)
            case "--neighbour-at", "--neighbour-seconds":
                let text = try value(argument)
                guard let seconds = Double(text), seconds >= 0, seconds <= 86_400 else {
                    throw ParseError(description: "\(argument) needs a number of seconds >= 0, not \"\(text)\"")
                }
                if argument == "--neighbour-at" { options.neighbour.startSeconds = seconds } else { options.neighbour.holdSeconds = seconds }
            case "--neighbour-process": options.isNeighbour = true
            case "--in-sandbox": options.inSandbox = true
            case "--progress-tty": options.progressTTY = try value(argument)
            case "--trace": options.tracePath = try value(argument)
            case "--policy":
                let text = try value(argument)
                guard let policy = CachePolicy(rawValue: text) else {
                    throw ParseError(description: "--policy must be one of \(CachePolicy.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
                }
                options.policy = policy
            case "-h", "--help": options.showHelp = true
            default:
                throw ParseError(description: "unknown argument \"\(argument)\" (see --help)")
            }
            index += 1
        }
        if options.compare && options.inSandbox {
            throw ParseError(description: "--compare cannot run inside the sandbox")
        }
        return options
    }

    /// The arguments that make a child run `cache` with these settings.
    /// - Parameters:
    ///   - cache: The cache the child runs.
    ///   - photos: The resolved photo folder.
    /// - Returns: The child's arguments.
    func childArguments(cache: CacheKind, photos: String) -> [String] {
        var arguments = [
            "--cache", cache.rawValue, "--memory-limit-mib", String(memoryLimitMiB), "--seconds", String(seconds),
            "--photos", photos, "--gallery-mib", String(galleryMiB), "--zipf", String(zipfExponent),
            "--seed", String(seed), "--in-sandbox",
        ]
        if let hotMiB { arguments += ["--hot-mib", String(hotMiB)] }
        if volatility != .automatic { arguments += ["--volatility", volatility.description] }
        if cache == .volatile { arguments += ["--policy", policy.rawValue] }
        if neighbour.isEnabled { arguments += neighbour.arguments }
        if let progressTTY { arguments += ["--progress-tty", progressTTY] }
        if let tracePath { arguments += ["--trace", compare ? tracePath + "." + cache.rawValue : tracePath] }
        return arguments
    }
}
