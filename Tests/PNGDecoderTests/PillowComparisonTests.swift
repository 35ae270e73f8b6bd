import Foundation
import PNGDecoder
import Testing

/// Pixel-for-pixel comparison with Pillow, run through Tests/Support/png_reference.py.
@Suite("Decoding matches Pillow")
struct PillowComparisonTests {
    private static let pillowMissing: Comment =
        "python3 with Pillow and numpy not found (pip install pillow numpy); set VOLATILE_REQUIRE_PYTHON_TESTS=1 to fail instead"
    private static let scikitImageMissing: Comment =
        "python3 with Pillow and scikit-image not found (pip install pillow scikit-image); set VOLATILE_REQUIRE_PYTHON_TESTS=1 to fail instead"

    /// Decodes every case and expects exactly the reference pixels.
    private func expectAllMatch(_ cases: [PythonReference.Case]) throws {
        for reference in cases {
            let decoder = try PNGDecoder(bytes: Fixtures.bytes(of: reference.file))
            #expect(decoder.width == reference.width && decoder.height == reference.height, "\(reference.name): size")
            let pixels = try decoder.decode()
            let expected = try Fixtures.bytes(of: reference.expectedRGBA)
            let difference = firstDifference(pixels, expected, width: reference.width)
            #expect(difference == nil, "\(reference.name) (\(reference.source)): \(difference ?? "")")
        }
    }

    @Test("every colour type, bit depth, tRNS, filter and Adam7 combination",
          .enabled(if: PythonReference.shouldRunPillowTests, pillowMissing))
    func generatedImages() throws {
        try #require(PythonReference.hasPillow, "VOLATILE_REQUIRE_PYTHON_TESTS is set but python3 with Pillow is missing")
        try PythonReference.withTemporaryDirectory { directory in
            try PythonReference.run(["generate", directory.path])
            let cases = try PythonReference.cases(in: directory)
            // 5 + 2 + 4 + 2 + 2 depth/type pairs, tRNS doubles 11 of them, × 2 interlacing × 4 sizes, + 3 large.
            #expect(cases.count == 211)
            #expect(cases.filter { $0.source == "spec+pillow" }.count >= 150, "most cases must be confirmed by Pillow")
            try expectAllMatch(cases)
        }
    }

    @Test("the demo's photographs", .enabled(if: PythonReference.shouldRunPillowTests, pillowMissing))
    func shippedPhotos() throws {
        try #require(PythonReference.hasPillow, "VOLATILE_REQUIRE_PYTHON_TESTS is set but python3 with Pillow is missing")
        let photos = Fixtures.photos
        #expect(photos.count >= 5, "photos missing from \(Fixtures.photosDirectory.path)")
        try PythonReference.withTemporaryDirectory { directory in
            try PythonReference.run(["decode", directory.path] + photos.map(\.path))
            try expectAllMatch(try PythonReference.cases(in: directory))
        }
    }

    @Test("the PNGs of the installed scikit-image", .enabled(if: PythonReference.shouldRunScikitImageTests, scikitImageMissing))
    func scikitImageData() throws {
        try #require(PythonReference.hasScikitImage, "VOLATILE_REQUIRE_PYTHON_TESTS is set but scikit-image is missing")
        let files = try PythonReference.run(["skimage-files"]).split(separator: "\n").map(String.init)
        #expect(!files.isEmpty)
        try PythonReference.withTemporaryDirectory { directory in
            try PythonReference.run(["decode", directory.path] + files)
            try expectAllMatch(try PythonReference.cases(in: directory))
        }
    }
}
