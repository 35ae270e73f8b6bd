/// How an arena finds out, on pin, which pages the kernel dropped while an extent was volatile.
///
/// Both mechanisms are race-free because detection and re-dirtying are one step per page:
/// a page is either still present when it is re-dirtied (and from then on cannot be dropped),
/// or it is absent at that moment and the same step reports it.
public enum DropDetectionStrategy: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The best mechanism the kernel grants: userfaultfd if it can be opened, canaries otherwise.
    case automatic
    /// userfaultfd MISSING mode. Pin costs one `MADV_POPULATE_WRITE`; unpin costs one
    /// `MADV_FREE`; no page is touched by user code. Creation throws if it is unavailable.
    case userfaultfd
    /// Per-page canaries: unpin saves each page's first word and stores a cookie there; pin
    /// compare-and-swaps the cookie back. Works everywhere; costs one memory touch per page.
    case canary

    /// The raw value.
    public var description: String { rawValue }
}

/// The drop-detection mechanism an arena actually uses, and why.
public struct DropDetection: Hashable, Sendable, CustomStringConvertible {
    /// The mechanism in use.
    public enum Mechanism: Hashable, Sendable, CustomStringConvertible {
        /// userfaultfd, in the given mode.
        case userfaultfd(UserfaultfdMode)
        /// Per-page canaries.
        case canary

        /// `userfaultfd(full)`, `userfaultfd(userModeOnly)` or `canary`.
        public var description: String {
            switch self {
            case .userfaultfd(let mode): return "userfaultfd(\(mode))"
            case .canary: return "canary"
            }
        }
    }

    /// The mechanism in use.
    public var mechanism: Mechanism
    /// Why it was picked (for `.automatic`: why better ones were refused).
    public var reason: String

    /// The strategy name of the mechanism in use: `userfaultfd` or `canary`.
    public var strategy: DropDetectionStrategy {
        switch mechanism {
        case .userfaultfd: return .userfaultfd
        case .canary: return .canary
        }
    }

    /// The mechanism and the reason it was picked.
    public var description: String { "\(mechanism): \(reason)" }
}

/// Which faults a userfaultfd delivers.
public enum UserfaultfdMode: String, Hashable, Sendable, CustomStringConvertible {
    /// Kernel-mode and user-mode faults (root or CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1).
    /// `MADV_POPULATE_WRITE` over a dropped page blocks until the handler thread resolves it.
    case full
    /// `UFFD_USER_MODE_ONLY`: `MADV_POPULATE_WRITE` returns EFAULT at a dropped page instead;
    /// the pin then finds the absent pages with mincore and maps them itself.
    case userModeOnly

    /// The raw value.
    public var description: String { rawValue }
}

/// How an arena re-dirties (populates) a range.
public enum PopulateMethod: Hashable, Sendable, CustomStringConvertible {
    /// `MADV_POPULATE_WRITE` (Linux 5.14): one call per range.
    case populateWrite
    /// A per-page atomic no-op write, with the reason `MADV_POPULATE_WRITE` is not used.
    case atomicTouch(reason: String)

    /// The method, and for the fallback why it is used.
    public var description: String {
        switch self {
        case .populateWrite: return "MADV_POPULATE_WRITE"
        case .atomicTouch(let reason): return "atomic touch (\(reason))"
        }
    }
}
