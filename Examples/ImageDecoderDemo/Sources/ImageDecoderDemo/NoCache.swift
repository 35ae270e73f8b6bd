/// The baseline: no cache; every access decodes into one reused buffer.
final class NoCache: GalleryCache {
    let kind = CacheKind.none
    let configurationNote: String
    private let gallery: Gallery
    private let buffer: UnsafeMutableRawBufferPointer
    private var decodes = 0

    init(gallery: Gallery) {
        self.gallery = gallery
        self.buffer = .allocate(byteCount: gallery.largestByteCount, alignment: 64)
        self.configurationNote = "decode every access into one \(mebibytes(gallery.largestByteCount)) MiB buffer"
    }

    deinit { buffer.deallocate() }

    func access(_ item: GalleryItem) throws -> UInt64? {
        try DecodedImage.decode(item, of: gallery, into: buffer)
        decodes += 1
        return DecodedImage.sampledChecksum(UnsafeRawBufferPointer(buffer), for: item)
    }

    func figures() -> CacheFigures {
        CacheFigures(regenerations: decodes, residentBytes: buffer.count)
    }
}
