/// What a pin found: whether the extent's content survived while it was volatile.
public enum PinReport: Hashable, Sendable, CustomStringConvertible {
    /// A new (or discarded) extent: its content must be generated. Its bytes are zero,
    /// except after ``VolatileArena/allocate(byteCount:zeroFilled:)`` with `zeroFilled: false`,
    /// which may hand back a recycled extent with stale bytes.
    case fresh
    /// Every page survived: the content is exactly what it was at unpin.
    case intact
    /// These pages (indices from 0, ascending) were dropped and now read as zeros;
    /// every other page is intact.
    case dropped(pages: [Int])

    /// True when any content must be (re)generated: `.fresh` or `.dropped`.
    public var needsRegeneration: Bool {
        if case .intact = self { return false }
        return true
    }

    /// The dropped page indices (empty for `.intact` and `.fresh`).
    public var droppedPages: [Int] {
        if case .dropped(let pages) = self { return pages }
        return []
    }

    /// `fresh`, `intact` or `dropped N page(s)`.
    public var description: String {
        switch self {
        case .fresh: return "fresh"
        case .intact: return "intact"
        case .dropped(let pages): return "dropped \(pages.count) page(s)"
        }
    }
}
