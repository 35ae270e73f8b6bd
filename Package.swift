// swift-tools-version: 6.0
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "VolatileCache",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VolatileMemory", targets: ["VolatileMemory"]),
        .library(name: "VolatileCache", targets: ["VolatileCache"]),
        .library(name: "VolatileCacheTesting", targets: ["VolatileCacheTesting"]),
        // The example's PNG decoder, for Examples/ThumbnailServer (a nested package).
        .library(name: "PNGDecoder", targets: ["PNGDecoder"]),
        .executable(name: "volatile-stress", targets: ["volatile-stress"]),
        .executable(name: "volatile-bench", targets: ["volatile-bench"]),
        .executable(name: "image-decoder-demo", targets: ["ImageDecoderDemo"]),
    ],
    targets: [
        // Thin C shim: ioctl request numbers, userfaultfd structs, raw syscalls Swift cannot import.
        .target(name: "CVolatileShim"),
        // Memory layer: sparse volatile regions, extents, pin/unpin, drop detection. No keys, no eviction.
        .target(name: "VolatileMemory", dependencies: ["CVolatileShim"], swiftSettings: strictSettings),
        // The cache type applications import.
        .target(name: "VolatileCache", dependencies: ["VolatileMemory", "CVolatileShim"], swiftSettings: strictSettings),
        // Drop injection, memory-pressure sandbox (cgroups), helpers for users' pressure tests.
        .target(name: "VolatileCacheTesting", dependencies: ["VolatileCache", "VolatileMemory", "CVolatileShim"], swiftSettings: strictSettings),
        .executableTarget(name: "volatile-stress", dependencies: ["VolatileCache", "VolatileCacheTesting"], swiftSettings: strictSettings),
        .executableTarget(name: "volatile-bench", dependencies: ["VolatileCache", "VolatileMemory", "CVolatileShim"], swiftSettings: strictSettings),

        // The example: a pure-Swift PNG decoder and an image-gallery demo.
        .target(name: "PNGDecoder", path: "Examples/ImageDecoderDemo/Sources/PNGDecoder", swiftSettings: strictSettings),
        .executableTarget(
            name: "ImageDecoderDemo",
            dependencies: ["PNGDecoder", "VolatileCache", "VolatileCacheTesting"],
            path: "Examples/ImageDecoderDemo/Sources/ImageDecoderDemo",
            swiftSettings: strictSettings
        ),

        .testTarget(name: "VolatileMemoryTests", dependencies: ["VolatileMemory", "CVolatileShim"], swiftSettings: strictSettings),
        .testTarget(name: "VolatileCacheTests", dependencies: ["VolatileCache", "VolatileCacheTesting"], swiftSettings: strictSettings),
        .testTarget(
            name: "VolatileCacheTestingTests",
            dependencies: ["VolatileCacheTesting", "VolatileCache", "volatile-stress", "ImageDecoderDemo"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PNGDecoderTests", dependencies: ["PNGDecoder"], swiftSettings: strictSettings),
    ]
)
