import Glibc
public import PNGDecoder

/// The photos the server can make thumbnails of: every `.png` in one folder, parsed once at
/// start-up (parsing is cheap; every decode inflates the file again).
public struct PhotoStore: Sendable {
    /// One photo: its name (the file name without `.png`) and its decoder.
    public struct Photo: Sendable {
        /// The name in URLs: `astronaut` for `astronaut.png`.
        public var name: String
        /// The parsed PNG.
        public var decoder: PNGDecoder
    }

    /// Why the photos could not be loaded.
    public struct LoadError: Error, CustomStringConvertible {
        /// What went wrong, for the user.
        public var description: String
    }

    /// The photos, sorted by name.
    public let photos: [Photo]
    /// The folder they came from.
    public let folder: String
    private let indexByName: [String: Int]

    /// Loads every `.png` in `folder`.
    /// - Parameter folder: The folder.
    /// - Throws: ``LoadError`` for an empty folder or a file the decoder rejects.
    public init(folder: String) throws(LoadError) {
        let names = Self.pngNames(in: folder)
        guard !names.isEmpty else { throw LoadError(description: "no .png files in \(folder)") }
        var photos: [Photo] = []
        for name in names {
            let path = folder + "/" + name
            guard let bytes = Self.readFile(path) else {
                throw LoadError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            do {
                photos.append(Photo(name: String(name.dropLast(4)), decoder: try PNGDecoder(bytes: bytes)))
            } catch {
                throw LoadError(description: "\(path) is not a PNG the decoder accepts: \(error)")
            }
        }
        self.photos = photos
        self.folder = folder
        self.indexByName = Dictionary(uniqueKeysWithValues: photos.enumerated().map { ($1.name, $0) })
    }

    /// The index of the photo named `name`, or nil.
    /// - Parameter name: The name (without `.png`).
    /// - Returns: Its index in ``photos``.
    public func index(named name: Substring) -> Int? {
        indexByName[String(name)]
    }

    /// The default photo folder: the image-decoder demo's sample photos,
    /// `Examples/ImageDecoderDemo/Photos` of the source tree this binary was built from (found
    /// from `#filePath`), else that path under the current folder, else `Photos` there.
    /// - Returns: The folder.
    /// - Throws: ``LoadError`` naming the places tried.
    public static func defaultFolder(sourceFile: String = #filePath) throws(LoadError) -> String {
        // <repo>/Examples/ThumbnailServer/Sources/ThumbnailServerCore/PhotoStore.swift
        var folder = sourceFile
        for _ in 0..<4 { folder = parent(of: folder) }
        let candidates = [
            folder + "/ImageDecoderDemo/Photos",
            "Examples/ImageDecoderDemo/Photos",
            "../ImageDecoderDemo/Photos",
        ]
        for candidate in candidates where !pngNames(in: candidate).isEmpty {
            return candidate
        }
        throw LoadError(description: "cannot find the sample photos; tried \(candidates.joined(separator: ", ")); pass --photos DIR")
    }

    private static func pngNames(in folder: String) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(".png") && !name.hasPrefix(".") && name.count > 4 { names.append(name) }
        }
        return names.sorted()
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
