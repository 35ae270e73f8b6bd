// Command-line options of volatile-stress, and the parser that turns arguments into them with
// usage errors that name the option and say what is expected.

/// Where the workload keeps its objects.
enum ObjectStoreKind: String, CaseIterable, Sendable {
    /// A `VolatileCache`: hot set pinned, the rest volatile, drops detected and regenerated.
    case cache
    /// Ordinary `[UInt8]` arrays in a dictionary: the baseline an ordinary cache would be.
    case heap
}

/// Drop-detection strategy names accepted by `--strategy`.
enum StrategyName: String, CaseIterable, Sendable {
    case automatic
    case userfaultfd
    case canary
}

/// `Configuration.volatility` names accepted by `--volatility` (issue 9).
enum VolatilityName: String, CaseIterable, Sendable {
    case automatic
    case always
    case never
}

/// Everything one run of the tool is told on its command line.
struct StressOptions: Equatable, Sendable {
    var seconds: Double = 10
    var threads: Int = 2
    /// Total size of all keys' objects.
    var workingSetMiB: Int = 256
    var strategy: StrategyName = .automatic
    var injectDropsPerSecond: Double = 0
    /// Re-run in a memory cgroup with this limit (the parent supervises).
    var memoryLimitMiB: Int?
    /// With `memoryLimitMiB`: halve the child's limit after this many seconds.
    var halveLimitAfterSeconds: Double?
    var store: ObjectStoreKind = .cache
    /// The cache's hot set (bytes of unpinned entries kept non-volatile).
    var hotBudgetMiB: Int = 16
    /// The cache's `Configuration.volatility`.
    var volatility: VolatilityName = .automatic
    var seed: UInt64 = 1
    /// Start the cache's memory-pressure monitor (sheds the hot set on pressure).
    var monitorsPressure: Bool = true
    /// Progress lines: nil means "when standard output is a terminal".
    var progress: Bool?

    static let smallestObject = 4 << 10
    static let largestObject = 4 << 20

    /// Arguments that reproduce these options for the sandboxed child (no sandbox options).
    var childArguments: [String] {
        var arguments = [
            "--seconds", formatted(seconds),
            "--threads", String(threads),
            "--working-set-mib", String(workingSetMiB),
            "--strategy", strategy.rawValue,
            "--inject-drops-per-second", formatted(injectDropsPerSecond),
            "--store", store.rawValue,
            "--hot-budget-mib", String(hotBudgetMiB),
            "--seed", String(seed),
        ]
        if !monitorsPressure { arguments.append("--no-pressure-monitor") }
        if volatility != .automatic { arguments += ["--volatility", volatility.rawValue] }
        return arguments
    }

    private func formatted(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// A command line the tool cannot run; `description` is the message for standard error.
enum StressOptionsError: Error, Equatable, CustomStringConvertible {
    case helpRequested
    case unknownOption(String)
    case missingValue(option: String)
    case invalidValue(option: String, value: String, expected: String)
    case requires(option: String, other: String)

    var description: String {
        switch self {
        case .helpRequested:
            return "volatile-stress: help requested (--help)"
        case .unknownOption(let option):
            return "volatile-stress: unknown option '\(option)'\n\n" + StressOptions.usage
        case .missingValue(let option):
            return "volatile-stress: \(option) needs a value\n\n" + StressOptions.usage
        case .invalidValue(let option, let value, let expected):
            return "volatile-stress: invalid value '\(value)' for \(option): expected \(expected)"
        case .requires(let option, let other):
            return "volatile-stress: \(option) only makes sense with \(other)"
        }
    }
}

extension StressOptions {
    static let usage = """
        usage: volatile-stress [options]

          --seconds N                  run for N seconds (default 10)
          --threads N                  worker threads, 1...256 (default 2)
          --working-set-mib N          total size of all objects, 4 KiB to 4 MiB each (default 256)
          --store cache|heap           keep objects in a VolatileCache, or in ordinary [UInt8]
                                       arrays that are never evicted (default cache)
          --strategy automatic|userfaultfd|canary
                                       drop detection of the cache's arena (default automatic)
          --hot-budget-mib N           the cache's hot set (default 16)
          --volatility automatic|always|never
                                       idle entries beyond the hot set: volatile or swappable
                                       (default automatic)
          --inject-drops-per-second N  drop volatile pages of the cache N times a second (default 0)
          --seed N                     seed of object sizes and access order (default 1)
          --no-pressure-monitor        do not shed the hot set on memory-pressure events
          --memory-limit-mib N         re-run in a memory cgroup limited to N MiB (needs root or
                                       a delegated cgroup) and report the sandbox's verdict
          --halve-limit-after-seconds N
                                       with --memory-limit-mib: halve the limit after N seconds
          --progress | --no-progress   force progress lines on or off (default: on a terminal)
          -h, --help                   show this help

        The last line of standard output is
          STRESS pins=<n> drops_detected=<n> regenerations=<n> corrupt=<n> errors=<n> strategy=<name>
        and the exit status is 1 when corrupt or errors is not zero (64 for a usage error).
        With --memory-limit-mib the child's lines are followed by
          SANDBOX oom=<bool> peak_mib=<n> exit=<termination> limit_mib=<n> wall_ms=<n>
        and the exit status is also 1 when the child was OOM-killed, timed out or the limit could
        not be halved (69 when memory cgroups are unavailable).
        """

    /// Parses the arguments after the program name.
    ///
    /// - Parameter arguments: For example `["--seconds", "5", "--store", "heap"]`; `--x=value`
    ///   is accepted too.
    /// - Returns: The options.
    /// - Throws: ``StressOptionsError`` naming the offending option.
    static func parse(_ arguments: [String]) throws(StressOptionsError) -> StressOptions {
        var options = StressOptions()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(StressOptionsError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = remaining.popFirst() else { throw .missingValue(option: name) }
                return next
            }
            if name == "-h" || name == "--help" {
                throw .helpRequested
            } else if let set = flags[name] {
                set(&options)
            } else if let parse = valued[name] {
                try parse(&options, name, try value())
            } else {
                throw .unknownOption(argument)
            }
        }
        if options.halveLimitAfterSeconds != nil && options.memoryLimitMiB == nil {
            throw .requires(option: "--halve-limit-after-seconds", other: "--memory-limit-mib")
        }
        return options
    }

    /// Parses an option's text (the option's name goes into an error) into its field.
    private typealias Setter = @Sendable (inout StressOptions, _ name: String, _ text: String) throws(StressOptionsError) -> Void

    /// The options that take a value.
    private static let valued: [String: Setter] = [
        "--seconds": { (o, name, text) throws(StressOptionsError) in o.seconds = try number(name, text, in: 0...86_400) },
        "--threads": { (o, name, text) throws(StressOptionsError) in o.threads = try integer(name, text, in: 1...256) },
        "--working-set-mib": { (o, name, text) throws(StressOptionsError) in o.workingSetMiB = try integer(name, text, in: 1...(1 << 20)) },
        "--strategy": { (o, name, text) throws(StressOptionsError) in o.strategy = try choice(name, text) },
        "--store": { (o, name, text) throws(StressOptionsError) in o.store = try choice(name, text) },
        "--inject-drops-per-second": { (o, name, text) throws(StressOptionsError) in o.injectDropsPerSecond = try number(name, text, in: 0...100_000) },
        "--memory-limit-mib": { (o, name, text) throws(StressOptionsError) in o.memoryLimitMiB = try integer(name, text, in: 8...(1 << 30)) },
        "--halve-limit-after-seconds": { (o, name, text) throws(StressOptionsError) in o.halveLimitAfterSeconds = try number(name, text, in: 0...86_400) },
        "--hot-budget-mib": { (o, name, text) throws(StressOptionsError) in o.hotBudgetMiB = try integer(name, text, in: 0...(1 << 20)) },
        "--volatility": { (o, name, text) throws(StressOptionsError) in o.volatility = try choice(name, text) },
        "--seed": { (o, name, text) throws(StressOptionsError) in o.seed = try seed(name, text) },
    ]

    /// The options that take no value.
    private static let flags: [String: @Sendable (inout StressOptions) -> Void] = [
        "--no-pressure-monitor": { $0.monitorsPressure = false },
        "--progress": { $0.progress = true },
        "--no-progress": { $0.progress = false },
    ]

    private static func seed(_ option: String, _ text: String) throws(StressOptionsError) -> UInt64 {
        guard let value = UInt64(text) else {
            throw .invalidValue(option: option, value: text, expected: "an integer from 0 to \(UInt64.max)")
        }
        return value
    }

    private static func integer(_ option: String, _ text: String, in range: ClosedRange<Int>) throws(StressOptionsError) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw .invalidValue(option: option, value: text, expected: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private static func number(_ option: String, _ text: String, in range: ClosedRange<Double>) throws(StressOptionsError) -> Double {
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw .invalidValue(option: option, value: text, expected: "a number from \(Int(range.lowerBound)) to \(Int(range.upperBound))")
        }
        return value
    }

    private static func choice<Choice: RawRepresentable & CaseIterable>(
        _ option: String, _ text: String
    ) throws(StressOptionsError) -> Choice where Choice.RawValue == String {
        guard let value = Choice(rawValue: text) else {
            throw .invalidValue(option: option, value: text, expected: "one of " + Choice.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return value
    }
}
