public import VolatileMemory

/// Errors of ``VolatileCache``. Errors thrown by regenerators and bodies are passed through
/// unchanged; these are the cache's own.
public enum VolatileCacheError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A regenerator asked for more bytes than the largest object the cache holds.
    case objectTooLarge(requestedBytes: Int, maximumBytes: Int)
    /// A regenerator asked for zero bytes, or a negative count.
    case invalidByteCount(Int)
    /// A regenerator returned without writing the object (neither
    /// ``RegenerationContext/write(byteCount:cost:_:)`` nor ``RegenerationContext/repair(_:)``).
    case regeneratorProducedNothing
    /// A regenerator wrote the object twice (called `write` or `repair` more than once).
    case regeneratorWroteTwice
    /// A regenerator's write reported a byte count different from the one it asked for.
    case sizeMismatch(requestedBytes: Int, writtenBytes: Int)
    /// ``RegenerationContext/repair(_:)`` was called but there is no surviving content to
    /// repair (``RegenerationContext/droppedPages`` is nil): write the whole object instead.
    case nothingToRepair
    /// The key was requested from inside its own regenerator: waiting would deadlock.
    case reentrantAccess
    /// The memory layer could not provide memory (out of memory, reservation limit reached,
    /// reservation refused). The cache is consistent; later calls may succeed once memory is freed.
    case memoryUnavailable(VolatileMemoryError)

    /// What went wrong, in a sentence.
    public var description: String {
        switch self {
        case .objectTooLarge(let requested, let maximum):
            return "a regenerator asked for \(requested) bytes, more than the largest object (\(maximum) bytes)"
        case .invalidByteCount(let count):
            return "a regenerator asked for \(count) bytes; objects hold at least one byte"
        case .regeneratorProducedNothing:
            return "the regenerator returned without writing the object"
        case .regeneratorWroteTwice:
            return "the regenerator wrote the object more than once"
        case .sizeMismatch(let requested, let written):
            return "the regenerator asked for \(requested) bytes but reported writing \(written)"
        case .nothingToRepair:
            return "repair was called but no content survives: write the whole object"
        case .reentrantAccess:
            return "the key was requested from inside its own regeneration (it would wait for itself)"
        case .memoryUnavailable(let error):
            return "memory unavailable: \(error)"
        }
    }
}
