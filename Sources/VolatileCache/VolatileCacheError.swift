public import VolatileMemory

/// Errors of ``VolatileCache``. Errors thrown by regenerators and bodies are passed through
/// unchanged; these are the cache's own.
public enum VolatileCacheError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An object larger than the largest the cache holds (``VolatileCache/maximumObjectByteCount``)
    /// was asked for, by `insert` or by a regenerator's ``RegenerationContext/write(byteCount:cost:_:)``.
    case objectTooLarge(requestedBytes: Int, maximumBytes: Int)
    /// An object of zero bytes, or a negative count, was asked for (by `insert` or a regenerator).
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
    /// A field of ``VolatileCache/Configuration`` holds a value the cache cannot work with;
    /// `VolatileCache.init` threw before creating anything.
    /// - Parameters:
    ///   - field: The field's path, e.g. `"shardCount"` or `"arena.maximumReservedBytes"`.
    ///   - reason: What is wrong and which values are accepted.
    case invalidConfiguration(field: String, reason: String)
    /// An argument of a call is out of range (a negative cost, for one).
    /// - Parameters:
    ///   - call: The call that failed, e.g. `"insert(_:forKey:cost:)"`.
    ///   - argument: The argument's name.
    ///   - value: The value passed.
    ///   - reason: Which values are accepted.
    case invalidArgument(call: String, argument: String, value: Int, reason: String)
    /// Regenerators on different threads or tasks wait for each other in a cycle: each one
    /// asked for a key whose regeneration waits, directly or through others, for its own.
    /// Thrown only to the caller whose wait would have closed the cycle; the others proceed
    /// once it gives up (or writes its object without the key it asked for).
    /// - Parameter keys: The keys of the cycle, starting with the one the caller asked for
    ///   and ending with the one it regenerates.
    case regenerationCycle(keys: [Key])

    /// A key of any cache, type-erased (the cache is generic, its error is not). Compare it
    /// with ``init(_:)`` of a key, or read ``base`` with `as?`.
    public struct Key: Hashable, @unchecked Sendable, CustomStringConvertible {  // Made only from `Sendable` keys.
        /// The key.
        public let base: AnyHashable

        /// Wraps a key.
        /// - Parameter key: The key.
        public init<K: Hashable & Sendable>(_ key: K) {
            base = AnyHashable(key)
        }

        /// The key's own description.
        public var description: String { String(describing: base) }
    }

    /// What went wrong, in a sentence.
    public var description: String {
        switch self {
        case .objectTooLarge(let requested, let maximum):
            "an object of \(requested) bytes was asked for, more than the largest object (\(maximum) bytes,"
                + " VolatileCache.maximumObjectByteCount; raise Configuration.maximumObjectByteCount)"
        case .invalidByteCount(let count): "an object of \(count) bytes was asked for; objects hold at least one byte"
        case .regeneratorProducedNothing: "the regenerator returned without writing the object"
        case .regeneratorWroteTwice: "the regenerator wrote the object more than once"
        case .sizeMismatch(let requested, let written): "the regenerator asked for \(requested) bytes but reported writing \(written)"
        case .nothingToRepair: "repair was called but no content survives: write the whole object"
        case .reentrantAccess: "the key was requested from inside its own regeneration (it would wait for itself)"
        case .memoryUnavailable(let error): "memory unavailable: \(error)"
        case .invalidConfiguration(let field, let reason): "VolatileCache.init: Configuration.\(field) is invalid: \(reason)"
        case .invalidArgument(let call, let argument, let value, let reason): "\(call): \(argument) \(value) is invalid: \(reason)"
        case .regenerationCycle(let keys):
            "regeneration cycle across threads or tasks (\(Self.cycle(keys))): waiting would deadlock"
        }
    }

    /// The keys of a cycle as `a → b → a`.
    private static func cycle(_ keys: [Key]) -> String {
        (keys + keys.prefix(1)).map { "\($0)" }.joined(separator: " → ")
    }
}
