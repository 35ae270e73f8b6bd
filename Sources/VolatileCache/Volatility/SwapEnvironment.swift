// Whether this process can swap, and how much room is left: /proc/meminfo (SwapTotal,
// SwapFree), vm.swappiness, and the memory cgroup's swap limit and usage (v2 memory.swap.max /
// memory.swap.current; v1 memory.memsw.* minus memory.*). Parsed from text so tests can feed in
// any machine's files.
import VolatileSystem

/// The swap this process can use, read from the kernel's files.
///
/// Swap is usable when the machine has swap with free space, swappiness is not 0, and the
/// process's memory cgroup allows swap. ``headroomBytes`` is the smaller of the machine's free
/// swap and what the cgroup's swap limit leaves.
///
/// Only the process's own cgroup is read; a lower limit on an ancestor is not seen (on v2,
/// `memory.swap.max` of each ancestor also applies).
public struct SwapEnvironment: Sendable, Hashable, CustomStringConvertible {
    /// `SwapTotal` from /proc/meminfo, in bytes.
    public var swapTotalBytes: Int
    /// `SwapFree` from /proc/meminfo, in bytes.
    public var swapFreeBytes: Int
    /// The swappiness that applies: the v1 cgroup's `memory.swappiness` where present, else
    /// `vm.swappiness`; nil when neither could be read.
    public var swappiness: Int?
    /// The most swap the cgroup may use, in bytes; nil for no cgroup limit (or none found).
    public var cgroupSwapLimitBytes: Int?
    /// Swap the cgroup uses now, in bytes; nil when unknown.
    public var cgroupSwapUsageBytes: Int?

    /// Creates an environment from known figures (tests, or another source).
    public init(swapTotalBytes: Int, swapFreeBytes: Int, swappiness: Int?, cgroupSwapLimitBytes: Int? = nil, cgroupSwapUsageBytes: Int? = nil) {
        self.swapTotalBytes = max(0, swapTotalBytes)
        self.swapFreeBytes = max(0, swapFreeBytes)
        self.swappiness = swappiness
        self.cgroupSwapLimitBytes = cgroupSwapLimitBytes
        self.cgroupSwapUsageBytes = cgroupSwapUsageBytes
    }

    /// No swap at all.
    public static let none = SwapEnvironment(swapTotalBytes: 0, swapFreeBytes: 0, swappiness: nil)

    /// Whether anything idle can be swapped out: swap exists, swappiness is not 0, and the
    /// cgroup's swap limit is not 0.
    public var isUsable: Bool {
        swapTotalBytes > 0 && swappiness != 0 && cgroupSwapLimitBytes != 0
    }

    /// Bytes that can still be swapped out: the machine's free swap, bounded by what the
    /// cgroup's limit leaves; 0 when swap is not usable.
    public var headroomBytes: Int {
        guard isUsable else { return 0 }
        var headroom = swapFreeBytes
        if let limit = cgroupSwapLimitBytes {
            headroom = min(headroom, max(0, limit - (cgroupSwapUsageBytes ?? 0)))
        }
        return headroom
    }

    /// "swap usable, headroom 4000 MiB (4096 MiB total, swappiness 60, cgroup unlimited)".
    public var description: String {
        func size(_ bytes: Int) -> String { "\(bytes >> 20) MiB" }
        let cgroup = cgroupSwapLimitBytes.map { "cgroup limit \(size($0))" } ?? "cgroup unlimited"
        return "swap \(isUsable ? "usable" : "not usable"), headroom \(size(headroomBytes)) "
            + "(\(size(swapTotalBytes)) total, swappiness \(swappiness.map(String.init) ?? "?"), \(cgroup))"
    }

    // MARK: Reading the kernel's files

    /// The memory cgroup's swap files, as text (nil where a file is missing).
    public enum ControlGroupSwapFiles: Sendable, Hashable {
        /// No memory cgroup found.
        case none
        /// cgroup v2: `memory.swap.max` ("max" or bytes) and `memory.swap.current`.
        case v2(swapMax: String?, swapCurrent: String?)
        /// cgroup v1: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`, `memory.usage_in_bytes`,
        /// `memory.memsw.usage_in_bytes` and `memory.swappiness`.
        case v1(limit: String?, memswLimit: String?, usage: String?, memswUsage: String?, swappiness: String?)
    }

    /// Parses the files.
    /// - Parameters:
    ///   - meminfo: The text of /proc/meminfo.
    ///   - swappiness: The text of /proc/sys/vm/swappiness, or nil.
    ///   - cgroup: The cgroup's files.
    /// - Returns: The environment; missing fields count as no swap.
    public static func parse(meminfo: String, swappiness: String?, cgroup: ControlGroupSwapFiles) -> SwapEnvironment {
        var total = 0, free = 0
        for line in meminfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let value = Int(fields[1]) else { continue }
            let bytes = value * (fields.count >= 3 && fields[2] == "kB" ? 1024 : 1)
            if fields[0] == "SwapTotal:" { total = bytes } else if fields[0] == "SwapFree:" { free = bytes }
        }
        var environment = SwapEnvironment(swapTotalBytes: total, swapFreeBytes: free, swappiness: swappiness.flatMap(integer))
        switch cgroup {
        case .none:
            break
        case .v2(let swapMax, let swapCurrent):
            environment.cgroupSwapLimitBytes = swapMax.flatMap(integer)  // "max" parses as nil
            environment.cgroupSwapUsageBytes = swapCurrent.flatMap(integer)
        case .v1(let limit, let memswLimit, let usage, let memswUsage, let cgroupSwappiness):
            // memsw is memory + swap; with no memsw files (swap accounting off) swap is unbounded.
            if let memsw = memswLimit.flatMap(integer), let plain = limit.flatMap(integer), memsw < unlimitedV1 {
                environment.cgroupSwapLimitBytes = max(0, memsw - plain)
            }
            if let memsw = memswUsage.flatMap(integer), let plain = usage.flatMap(integer) {
                environment.cgroupSwapUsageBytes = max(0, memsw - plain)
            }
            if let value = cgroupSwappiness.flatMap(integer) { environment.swappiness = value }
        }
        return environment
    }

    /// Limits at or above this (v1 prints 9223372036854771712 for "unlimited") mean none.
    static let unlimitedV1 = 1 << 62

    private static func integer(_ text: String) -> Int? {
        Int(text.trimmingWhitespace())
    }

    /// Reads this process's environment.
    /// - Parameter read: Reads a file's text, or nil (tests point it elsewhere).
    /// - Returns: The environment; unreadable files count as no swap.
    public static func current(read: (String) -> String? = SwapEnvironment.readFile) -> SwapEnvironment {
        let location = ControlGroupLocation.current()
        let cgroup: ControlGroupSwapFiles
        if let v1 = location.v1Memory {
            cgroup = .v1(
                limit: read(v1 + "/memory.limit_in_bytes"), memswLimit: read(v1 + "/memory.memsw.limit_in_bytes"),
                usage: read(v1 + "/memory.usage_in_bytes"), memswUsage: read(v1 + "/memory.memsw.usage_in_bytes"),
                swappiness: read(v1 + "/memory.swappiness"))
        } else if let v2 = location.v2 {
            // The v2 root has no memory.swap.* files: nil reads as "no cgroup limit".
            cgroup = .v2(swapMax: read(v2 + "/memory.swap.max"), swapCurrent: read(v2 + "/memory.swap.current"))
        } else {
            cgroup = .none
        }
        return parse(meminfo: read("/proc/meminfo") ?? "", swappiness: read("/proc/sys/vm/swappiness"), cgroup: cgroup)
    }

    /// Reads a file's text (the cgroup and proc files), or nil.
    public static func readFile(_ path: String) -> String? {
        try? Syscall.readText(path).get()
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var text = self[...]
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
