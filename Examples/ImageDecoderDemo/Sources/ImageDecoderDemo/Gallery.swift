import PNGDecoder

/// One distinct decoded object of the gallery: a photo, cropped and scaled. Each access that
/// misses runs a real decode of the photo with this transform.
struct GalleryItem: Sendable, Hashable {
    /// Position in ``Gallery/items`` (the cache key).
    var index: Int
    /// Position in ``Gallery/photos``.
    var photo: Int
    var transform: PNGTransform
    var width: Int
    var height: Int
    /// What the item is, for listings: "thumb", "view 2x", "tile L2 1,3".
    var label: String

    /// The decoded object: header plus RGBA8 pixels.
    var byteCount: Int { DecodedImage.headerByteCount + width * height * 4 }
}

/// The gallery: every photo as a viewer would show it, each view a distinct decoded object.
///
/// Per photo: two thumbnails, one double-size view, and a four-level zoom pyramid of tiles
/// (1, 4, 16 and 64 tiles; level L cuts the photo into 2^L × 2^L crops and scales each so the
/// photo's long side is 2^L tiles). The tile edge is chosen so that the whole gallery decodes
/// to about the requested size (652 px for 1 GiB with the eight sample photos: 704 objects from
/// 45 KiB to 6.5 MiB).
struct Gallery: Sendable {
    var photos: [Photo]
    var items: [GalleryItem]
    /// The tile edge in pixels the gallery was built with.
    var tileEdge: Int

    /// Sum of the items' decoded sizes.
    var totalByteCount: Int { items.reduce(0) { $0 + $1.byteCount } }
    /// The largest item's decoded size.
    var largestByteCount: Int { items.map(\.byteCount).max() ?? 0 }

    /// The number of zoom-pyramid levels per photo.
    static let pyramidLevels = 4

    /// Builds the gallery whose decoded size is closest to `targetBytes`.
    /// - Parameters:
    ///   - photos: The photos.
    ///   - targetBytes: The wanted total decoded size.
    /// - Returns: The gallery.
    /// - Complexity: O(log(edge) × items).
    static func make(photos: [Photo], targetBytes: Int) -> Gallery {
        // The total grows with the square of the tile edge: binary-search the edge.
        var low = 8, high = 8192
        while low < high {
            let middle = (low + high) / 2
            if total(photos: photos, tileEdge: middle) < targetBytes { low = middle + 1 } else { high = middle }
        }
        let edge = low > 8 && targetBytes - total(photos: photos, tileEdge: low - 1) < total(photos: photos, tileEdge: low) - targetBytes
            ? low - 1 : low
        return Gallery(photos: photos, items: items(photos: photos, tileEdge: edge), tileEdge: edge)
    }

    private static func total(photos: [Photo], tileEdge: Int) -> Int {
        items(photos: photos, tileEdge: tileEdge).reduce(0) { $0 + $1.byteCount }
    }

    /// Every item for a tile edge.
    static func items(photos: [Photo], tileEdge: Int) -> [GalleryItem] {
        var items: [GalleryItem] = []
        for (photoIndex, photo) in photos.enumerated() {
            let width = photo.decoder.width, height = photo.decoder.height
            let longSide = max(width, height)
            func add(_ crop: PNGRect?, scale: Double, _ label: String) {
                let source = crop ?? PNGRect(x: 0, y: 0, width: width, height: height)
                let outputWidth = max(1, Int((Double(source.width) * scale).rounded()))
                let outputHeight = max(1, Int((Double(source.height) * scale).rounded()))
                let transform = PNGTransform(crop: crop, outputWidth: outputWidth, outputHeight: outputHeight, filter: .box)
                items.append(GalleryItem(
                    index: items.count, photo: photoIndex, transform: transform,
                    width: outputWidth, height: outputHeight, label: label))
            }
            let unit = Double(tileEdge) / Double(longSide)
            add(nil, scale: unit / 4, "thumb small")
            add(nil, scale: unit / 2, "thumb")
            add(nil, scale: unit * 2, "view 2x")
            for level in 0..<pyramidLevels {
                let count = 1 << level
                for row in 0..<count {
                    for column in 0..<count {
                        let x0 = width * column / count, x1 = width * (column + 1) / count
                        let y0 = height * row / count, y1 = height * (row + 1) / count
                        let crop = PNGRect(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                        add(level == 0 ? nil : crop, scale: unit * Double(count), "tile L\(level) \(column),\(row)")
                    }
                }
            }
        }
        return items
    }
}
