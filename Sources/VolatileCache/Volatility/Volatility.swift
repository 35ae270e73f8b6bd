// What an idle entry beyond the hot budget becomes: volatile (MADV_FREE: the kernel drops it
// without I/O and the cache regenerates it) or swappable (ordinary memory: the kernel may swap it
// out and fault it back in). Reclaim takes lazily freed pages (file LRU) before it swaps
// anonymous ones, so volatile entries always go first.

/// Whether idle entries beyond the hot budget become volatile or stay swappable.
public enum Volatility: Sendable, Hashable, CustomStringConvertible {
    /// Per entry: swappable when swap is usable, has headroom, and bringing the entry back
    /// from swap costs less than regenerating it; otherwise volatile. The default.
    case automatic
    /// Always volatile (`MADV_FREE`).
    case always
    /// Never volatile: idle entries stay ordinary memory, which the kernel may swap out; only
    /// the cache's limits and eviction bound them.
    case never

    /// `automatic`, `always` or `never`.
    public var description: String {
        switch self {
        case .automatic: "automatic"
        case .always: "always"
        case .never: "never"
        }
    }
}

/// A per-entry hint given on insert, refining ``Volatility/automatic``.
public enum VolatilityHint: Sendable, Hashable {
    /// Follow the cache's ``Volatility``.
    case automatic
    /// Always volatile once idle beyond the hot budget: cheap to regenerate, or must never
    /// reach a swap device (key material).
    case volatile
    /// Swappable whenever swap is usable and has headroom, whatever the costs say: costly or
    /// impossible to regenerate. Without usable swap it is volatile like any other entry.
    case swappable
}
