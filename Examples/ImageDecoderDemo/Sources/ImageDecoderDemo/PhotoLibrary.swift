import Glibc
import PNGDecoder

/// One sample photograph: its file name and a parsed decoder (parsing is cheap; every decode
/// inflates the whole file again).
struct Photo: Sendable {
    var name: String
    var decoder: PNGDecoder
    var fileByteCount: Int
}

/// Finds and loads the sample photographs that ship with the example.
enum PhotoLibrary {
    /// Why the photos could not be loaded.
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// The photo folder: `explicit` if given, else `Examples/ImageDecoderDemo/Photos` of the
    /// source tree this binary was compiled from (found from `#filePath`, so `swift run` works in
    /// a fresh clone with no setup), else the same path under the current directory.
    ///
    /// `#filePath` is resolved through symbolic links first: a package that links this target's
    /// folder from elsewhere still finds the real tree.
    /// - Parameter explicit: The `--photos` folder, if any.
    /// - Returns: The folder.
    /// - Throws: ``LoadError`` listing the places tried.
    static func locate(explicit: String?, sourceFile: String = #filePath) throws(LoadError) -> String {
        if let explicit {
            guard containsPhotos(explicit) else {
                throw LoadError(description: "--photos \(explicit): no .png files there")
            }
            return explicit
        }
        var tried: [String] = []
        // .../Examples/ImageDecoderDemo/Sources/ImageDecoderDemo/PhotoLibrary.swift
        let sourceFolder = parent(of: sourceFile)
        if let real = realPath(sourceFolder) {
            let candidate = parent(of: parent(of: real)) + "/Photos"
            if containsPhotos(candidate) { return candidate }
            tried.append(candidate)
        }
        let relative = "Examples/ImageDecoderDemo/Photos"
        if containsPhotos(relative) { return relative }
        tried.append(relative + " (from the current folder)")
        throw LoadError(description: """
            cannot find the sample photos; tried \(tried.joined(separator: ", ")). \
            Run from a clone of the repository, or pass --photos DIR (a folder of PNG files).
            """)
    }

    /// Reads and parses every `.png` in `folder`, sorted by name.
    /// - Parameter folder: The folder.
    /// - Returns: The photos.
    /// - Throws: ``LoadError`` for an unreadable or invalid file, or an empty folder.
    static func load(from folder: String) throws(LoadError) -> [Photo] {
        let names = pngNames(in: folder)
        guard !names.isEmpty else { throw LoadError(description: "no .png files in \(folder)") }
        var photos: [Photo] = []
        for name in names {
            let path = folder + "/" + name
            guard let bytes = readFile(path) else {
                throw LoadError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            do {
                photos.append(Photo(name: name, decoder: try PNGDecoder(bytes: bytes), fileByteCount: bytes.count))
            } catch {
                throw LoadError(description: "\(path) is not a PNG this decoder accepts: \(error)")
            }
        }
        return photos
    }

    private static func containsPhotos(_ folder: String) -> Bool {
        !pngNames(in: folder).isEmpty
    }

    private static func pngNames(in folder: String) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(".png") && !name.hasPrefix(".") { names.append(name) }
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

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { Glibc.free(resolved) }
        return String(cString: resolved)
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
