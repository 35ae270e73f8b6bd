import PNGDecoder
import Synchronization
import VolatileCache

/// How a decoded gallery image is laid out in raw bytes, wherever it lives (in the volatile
/// cache's memory, in an NSCache object, in the reused buffer): a 32-byte header, then RGBA8
/// rows. It is the volatile cache's typed value (`VolatileRepresentable`): the regenerator
/// writes the header, the decoder writes the pixels straight after it, and readers get a
/// ``View`` over the same memory, with no copy.
///
/// ```text
///  0  magic "GIMG"   4  item index   8  width   12  height   16  pixel byte count   24  reserved
/// 32  RGBA8 pixels, width × height × 4 bytes, row-major
/// ```
///
/// The header lets every access check that the bytes are the object asked for; the sampled
/// checksum (one word per page) checks that no page was lost or mixed up on the way.
enum DecodedImage: VolatileRepresentable {
    static let headerByteCount = 32
    static let magic: UInt32 = 0x474D_4947  // "GIMG" little-endian

    /// What a regenerator knows before decoding: which item, and its output size.
    struct Header: Sendable, Equatable {
        var itemIndex: Int
        var width: Int
        var height: Int

        var pixelByteCount: Int { width * height * 4 }

        init(itemIndex: Int, width: Int, height: Int) {
            self.itemIndex = itemIndex
            self.width = width
            self.height = height
        }

        init(_ item: GalleryItem) {
            self.init(itemIndex: item.index, width: item.width, height: item.height)
        }
    }

    /// A decoded image in memory someone else owns; valid only inside the closure it is
    /// passed to.
    struct View {
        /// Nil when the bytes do not start with a valid header.
        var header: Header?
        /// The whole object, header included.
        var bytes: UnsafeRawBufferPointer
    }

    static func byteCount(for header: Header) -> Int {
        headerByteCount + header.pixelByteCount
    }

    static func encode(_ header: Header, into bytes: UnsafeMutableRawBufferPointer) -> Int {
        bytes.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        bytes.storeBytes(of: UInt32(header.itemIndex).littleEndian, toByteOffset: 4, as: UInt32.self)
        bytes.storeBytes(of: UInt32(header.width).littleEndian, toByteOffset: 8, as: UInt32.self)
        bytes.storeBytes(of: UInt32(header.height).littleEndian, toByteOffset: 12, as: UInt32.self)
        bytes.storeBytes(of: UInt64(header.pixelByteCount).littleEndian, toByteOffset: 16, as: UInt64.self)
        bytes.storeBytes(of: UInt64(0), toByteOffset: 24, as: UInt64.self)
        return headerByteCount
    }

    static func decodeHeader(from bytes: UnsafeRawBufferPointer) -> (header: Header, byteCount: Int) {
        (readHeader(bytes) ?? Header(itemIndex: -1, width: 0, height: 0), headerByteCount)
    }

    static func view(of bytes: UnsafeRawBufferPointer) -> View {
        View(header: readHeader(bytes), bytes: bytes)
    }

    private static func readHeader(_ bytes: UnsafeRawBufferPointer) -> Header? {
        guard bytes.count >= headerByteCount,
              UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == magic
        else { return nil }
        let header = Header(
            itemIndex: Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))),
            width: Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))),
            height: Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))))
        let pixels = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        guard pixels == header.pixelByteCount, bytes.count >= headerByteCount + pixels else { return nil }
        return header
    }

    /// Decodes `item`'s pixels into `pixels` (exactly its pixel byte count), straight from the
    /// photo's PNG data: a full inflate, then crop and scale.
    /// - Parameters:
    ///   - item: The gallery item.
    ///   - gallery: The gallery holding its photo.
    ///   - pixels: The payload memory. Do not escape the pointer.
    /// - Returns: The bytes written.
    /// - Throws: A `PNGError` from the decoder.
    static func decodePixels(_ item: GalleryItem, of gallery: Gallery, into pixels: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = Header(item).pixelByteCount
        let start = ContinuousClock.now
        try gallery.photos[item.photo].decoder.decode(
            into: UnsafeMutableRawBufferPointer(rebasing: pixels[..<count]), transform: item.transform)
        DecodeMeter.record(bytes: count, since: start)
        return count
    }

    /// Writes `item` whole (header and pixels) into `buffer` (at least `item.byteCount` bytes),
    /// for the caches that own plain memory.
    /// - Throws: A `PNGError` from the decoder.
    static func decode(_ item: GalleryItem, of gallery: Gallery, into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count >= item.byteCount, "buffer too small for item \(item.index)")
        let headerBytes = encode(Header(item), into: buffer)
        _ = try decodePixels(item, of: gallery, into: UnsafeMutableRawBufferPointer(rebasing: buffer[headerBytes..<item.byteCount]))
    }

    /// A checksum of the header and of one 8-byte word in every 4 KiB page (and the last word),
    /// or nil when the header is not `item`'s. Reading one word per page touches every page
    /// without reading every byte, as drawing a downscaled preview would.
    /// - Parameters:
    ///   - view: The decoded object.
    ///   - item: The item it should be.
    /// - Returns: The checksum, or nil for a wrong or damaged header.
    /// - Complexity: O(pages).
    static func sampledChecksum(_ view: View, for item: GalleryItem) -> UInt64? {
        guard view.header == Header(item), view.bytes.count >= item.byteCount else { return nil }
        let bytes = view.bytes
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        let last = item.byteCount - 8
        var offset = 0
        var page = 0
        while offset <= last {
            // Vary the word inside each page so the samples are not all in one column.
            let word = bytes.loadUnaligned(fromByteOffset: min(offset + (page &* 520) % 4088, last), as: UInt64.self)
            hash = (hash ^ word) &* 0x100_0000_01B3
            offset += 4096
            page += 1
        }
        hash = (hash ^ bytes.loadUnaligned(fromByteOffset: last, as: UInt64.self)) &* 0x100_0000_01B3
        return hash
    }

    /// ``sampledChecksum(_:for:)`` of raw bytes.
    static func sampledChecksum(_ bytes: UnsafeRawBufferPointer, for item: GalleryItem) -> UInt64? {
        sampledChecksum(view(of: bytes), for: item)
    }
}

/// Time and bytes spent decoding, whichever cache asked: it tells a cache that misses less from
/// one that misses cheaper objects.
enum DecodeMeter {
    static let nanoseconds = Atomic<Int>(0)
    static let bytes = Atomic<Int>(0)

    static func record(bytes count: Int, since start: ContinuousClock.Instant) {
        let elapsed = start.duration(to: .now)
        nanoseconds.add(Int(elapsed.components.seconds) * 1_000_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000), ordering: .relaxed)
        bytes.add(count, ordering: .relaxed)
    }

    static var seconds: Double { Double(nanoseconds.load(ordering: .relaxed)) * 1e-9 }
}
