// swift-tools-version: 6.0
import PackageDescription

// The thumbnail server: an HTTP application on VolatileCache (Hummingbird 2). It lives in its own
// package so the root package stays free of dependencies; it uses the root package by path.

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "ThumbnailServer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "thumbnail-server", targets: ["thumbnail-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // The root package; its identity is the folder name, so name it for the product look-ups.
        .package(name: "VolatileCache", path: "../.."),
    ],
    targets: [
        // Routes, caches, thumbnails, options: everything but the process entry point, so the
        // tests can build the application in memory.
        .target(
            name: "ThumbnailServerCore",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "VolatileCache", package: "VolatileCache"),
                .product(name: "VolatileCacheTesting", package: "VolatileCache"),
                .product(name: "PNGDecoder", package: "VolatileCache"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "thumbnail-server",
            dependencies: ["ThumbnailServerCore"],
            swiftSettings: strictSettings
        ),
        // Route tests against a live server on a free loopback port, with a small blocking HTTP
        // client of their own (HummingbirdTesting would pull in AsyncHTTPClient and TLS: minutes
        // more of CI build for nothing these tests need).
        .testTarget(
            name: "ThumbnailServerTests",
            dependencies: [
                "ThumbnailServerCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PNGDecoder", package: "VolatileCache"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
