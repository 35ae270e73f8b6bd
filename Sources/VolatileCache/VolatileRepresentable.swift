/// A value that lays itself out in raw cache memory (a small header, then a payload) and is
/// read back without a copy, through a view over that memory.
///
/// A decoded image is the model: the header holds width, height and pixel format; the
/// payload holds the pixels; the view exposes them as a typed buffer.
///
/// ```swift
/// enum DecodedImage: VolatileRepresentable {
///     struct Header: Sendable { var width: Int32; var height: Int32 }
///     struct View { var width: Int; var height: Int; var pixels: UnsafeBufferPointer<UInt32> }
///     static func byteCount(for h: Header) -> Int { 8 + Int(h.width) * Int(h.height) * 4 }
///     static func encode(_ h: Header, into bytes: UnsafeMutableRawBufferPointer) -> Int {
///         bytes.storeBytes(of: h, as: Header.self); return 8
///     }
///     static func decodeHeader(from bytes: UnsafeRawBufferPointer) -> (header: Header, byteCount: Int) {
///         (bytes.loadUnaligned(as: Header.self), 8)
///     }
///     static func view(of bytes: UnsafeRawBufferPointer) -> View { ... }
/// }
/// ```
public protocol VolatileRepresentable {
    /// What the regenerator learns first (for an image: its dimensions).
    associatedtype Header: Sendable
    /// A non-owning view over an object in cache memory. It is valid only inside the closure
    /// it is passed to: do not let it (or pointers from it) escape.
    associatedtype View

    /// The object's total size (header and payload) in bytes.
    /// - Parameter header: The header.
    static func byteCount(for header: Header) -> Int

    /// Writes `header` at the start of `bytes` (the whole object).
    /// - Parameters:
    ///   - header: The header.
    ///   - bytes: The object's memory, ``byteCount(for:)`` bytes.
    /// - Returns: The header's size: the payload starts there.
    static func encode(_ header: Header, into bytes: UnsafeMutableRawBufferPointer) -> Int

    /// Reads the header back from a complete object.
    /// - Parameter bytes: The object's bytes.
    /// - Returns: The header and its size in bytes.
    static func decodeHeader(from bytes: UnsafeRawBufferPointer) -> (header: Header, byteCount: Int)

    /// A view over a complete object.
    /// - Parameter bytes: The object's bytes.
    static func view(of bytes: UnsafeRawBufferPointer) -> View

    /// Whether the type's regenerators can rewrite only the dropped parts of an object
    /// (rows, tiles) with ``RegenerationContext/repair(_:_:)``. Default: false, and
    /// then the whole object is regenerated after any drop.
    static var supportsPartialRegeneration: Bool { get }
}

extension VolatileRepresentable {
    /// False: the whole object is regenerated after any drop.
    public static var supportsPartialRegeneration: Bool { false }
}

extension RegenerationContext {
    /// Writes a typed object: its header, then the payload `body` fills.
    /// - Parameters:
    ///   - type: The value type.
    ///   - header: The header (the object's size follows from it).
    ///   - cost: The entry's cost; nil for its byte count.
    ///   - body: Fills the payload (do not escape the pointer) and returns how many bytes it
    ///     wrote, which must be the payload's size.
    /// - Throws: As ``write(byteCount:cost:_:)``.
    public mutating func write<Value: VolatileRepresentable>(
        _ type: Value.Type, header: Value.Header, cost: Int? = nil,
        _ body: (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws {
        let total = Value.byteCount(for: header)
        try write(byteCount: total, cost: cost) { bytes in
            let headerBytes = Value.encode(header, into: bytes)
            let payload = UnsafeMutableRawBufferPointer(rebasing: bytes[headerBytes...])
            return try headerBytes + body(payload)
        }
    }

    /// Rewrites only the dropped parts of a typed object's payload.
    /// Available when ``droppedPages`` is not nil (the typed access methods offer it only if
    /// the type ``VolatileRepresentable/supportsPartialRegeneration`` and the header survived).
    /// - Parameters:
    ///   - type: The value type.
    ///   - body: Receives the header, the payload, and the dropped byte ranges of the payload
    ///     (ascending, page-aligned in the object); it must rewrite those ranges.
    /// - Throws: ``VolatileCacheError/nothingToRepair``, or as ``repair(_:)``.
    public mutating func repair<Value: VolatileRepresentable>(
        _ type: Value.Type,
        _ body: (_ header: Value.Header, _ payload: UnsafeMutableRawBufferPointer, _ droppedRanges: [Range<Int>]) throws -> Void
    ) throws {
        let pageSize = self.pageSize
        try repair { bytes, pages in
            let (header, headerBytes) = Value.decodeHeader(from: UnsafeRawBufferPointer(bytes))
            let payload = UnsafeMutableRawBufferPointer(rebasing: bytes[headerBytes...])
            var ranges: [Range<Int>] = []
            for page in pages {
                let lower = max(page * pageSize, headerBytes) - headerBytes
                let upper = min((page + 1) * pageSize, bytes.count) - headerBytes
                guard lower < upper else { continue }
                if let last = ranges.last, last.upperBound == lower {
                    ranges[ranges.count - 1] = last.lowerBound..<upper
                } else {
                    ranges.append(lower..<upper)
                }
            }
            try body(header, payload, ranges)
        }
    }
}

extension VolatileCache {
    /// Calls `body` with a typed view of the object, regenerating it first on a miss or a drop.
    /// After a drop, the regenerator sees ``RegenerationContext/droppedPages`` (and may
    /// ``RegenerationContext/repair(_:_:)``) only if `Value` supports partial regeneration
    /// and the object's first page (holding the header, which must fit in it) survived; otherwise it writes the whole object.
    /// - Parameters:
    ///   - type: The value type.
    ///   - key: The key.
    ///   - regenerate: Writes the object, typically with ``RegenerationContext/write(_:header:cost:_:)``.
    ///   - body: Reads the view; valid only during the call.
    /// - Returns: What `body` returns.
    /// - Throws: As ``withBytes(forKey:regenerate:_:)``.
    // Disfavored: in async code the async overload wins even for a regenerator without
    // `await` (which would otherwise pick this one and block the thread on a waiter).
    @_disfavoredOverload
    @available(*, noasync, message: "blocks the thread while another caller regenerates; use the async overload (mark the regenerator async or add an await)")
    public func withValue<Value: VolatileRepresentable, Result>(
        _ type: Value.Type, forKey key: Key,
        regenerate: (inout RegenerationContext<Key>) throws -> Void,
        _ body: (Value.View) throws -> Result
    ) throws -> Result {
        let hold = try acquire(HashedKey(key), offersRepair: Value.supportsPartialRegeneration ? .ifFirstPageSurvived : .never, canRegenerate: true) { context in
            try regenerate(&context)
        }!
        defer { release(hold) }
        return try body(Value.view(of: UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount)))
    }

    /// Calls `body` with a typed view of the object, regenerating it asynchronously if needed.
    /// - Parameters:
    ///   - type: The value type.
    ///   - key: The key.
    ///   - isolation: The caller's actor.
    ///   - regenerate: Writes the object; may suspend.
    ///   - body: Reads the view; valid only during the call.
    /// - Returns: What `body` returns.
    /// - Throws: As ``withBytes(forKey:isolation:regenerate:_:)``.
    public func withValue<Value: VolatileRepresentable, Result>(
        _ type: Value.Type, forKey key: Key,
        isolation: isolated (any Actor)? = #isolation,
        regenerate: (inout RegenerationContext<Key>) async throws -> Void,
        _ body: (Value.View) throws -> Result
    ) async throws -> Result {
        let hold = try await acquire(key, offersRepair: Value.supportsPartialRegeneration ? .ifFirstPageSurvived : .never, regenerate)
        defer { release(hold) }
        return try body(Value.view(of: UnsafeRawBufferPointer(start: hold.base, count: hold.byteCount)))
    }
}
