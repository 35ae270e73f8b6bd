// swift-tools-version: 6.0
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// Linux only: the package rests on MADV_FREE, userfaultfd, MADV_POPULATE_WRITE and memory
// cgroups. There is no `platforms:` entry because SwiftPM has none for Linux; on any other
// system the build stops at one `#error` (in CVolatileShim and VolatileSystem) that says so.
//
// Internal checks: `swift test -Xswiftc -DVOLATILE_INTERNAL_CHECKS` verifies the allocator's
// invariants after every change and enables the out-of-memory fault hook (CI does this in its
// ThreadSanitizer run). Release builds carry neither.
let package = Package(
    name: "VolatileCache",
    products: [
        .library(name: "VolatileMemory", targets: ["VolatileMemory"]),
        .library(name: "VolatileCache", targets: ["VolatileCache"]),
        .library(name: "VolatileCacheTesting", targets: ["VolatileCacheTesting"]),
        // The example's PNG decoder, for Examples/ThumbnailServer (a nested package).
        .library(name: "PNGDecoder", targets: ["PNGDecoder"]),
        .executable(name: "volatile-stress", targets: ["volatile-stress"]),
        .executable(name: "volatile-bench", targets: ["volatile-bench"]),
        .executable(name: "image-decoder-demo", targets: ["ImageDecoderDemo"]),
        .executable(name: "volatile-policy-sim", targets: ["volatile-policy-sim"]),
    ],
    targets: [
        // Thin C shim: ioctl request numbers, userfaultfd structs, raw syscalls Swift cannot import.
        .target(name: "CVolatileShim"),
        // System layer under every other module (package-internal, no product): every system call
        // (one wrapper each, one Errno), TSan-visible locks, threads, cgroup file locations.
        .target(name: "VolatileSystem", dependencies: ["CVolatileShim"], swiftSettings: strictSettings),
        // Memory layer: sparse volatile regions, extents, pin/unpin, drop detection. No keys, no eviction.
        .target(name: "VolatileMemory", dependencies: ["CVolatileShim", "VolatileSystem"], swiftSettings: strictSettings),
        // The cache type applications import.
        .target(name: "VolatileCache", dependencies: ["VolatileMemory", "VolatileSystem", "CVolatileShim"], swiftSettings: strictSettings),
        // Drop injection, memory-pressure sandbox (cgroups), helpers for users' pressure tests.
        .target(name: "VolatileCacheTesting", dependencies: ["VolatileCache", "VolatileMemory", "VolatileSystem", "CVolatileShim"], swiftSettings: strictSettings),
        .executableTarget(name: "volatile-stress", dependencies: ["VolatileCache", "VolatileCacheTesting", "VolatileSystem"], swiftSettings: strictSettings),
        .executableTarget(name: "volatile-bench", dependencies: ["VolatileCache", "VolatileMemory", "VolatileSystem", "CVolatileShim"], swiftSettings: strictSettings),

        // The example: a pure-Swift PNG decoder and an image-gallery demo.
        .target(name: "PNGDecoder", path: "Examples/ImageDecoderDemo/Sources/PNGDecoder", swiftSettings: strictSettings),
        .executableTarget(
            name: "ImageDecoderDemo",
            dependencies: ["PNGDecoder", "VolatileCache", "VolatileCacheTesting"],
            path: "Examples/ImageDecoderDemo/Sources/ImageDecoderDemo",
            swiftSettings: strictSettings
        ),

        // Helpers shared by the test suites (deterministic content, threads); no product.
        .target(name: "VolatileTestSupport", path: "Tests/TestSupport", swiftSettings: strictSettings),
        .testTarget(
            name: "VolatileMemoryTests",
            dependencies: ["VolatileMemory", "VolatileSystem", "VolatileTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VolatileCacheTests",
            dependencies: ["VolatileCache", "VolatileCacheTesting", "VolatileSystem", "VolatileTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VolatileCacheTestingTests",
            dependencies: ["VolatileCacheTesting", "VolatileCache", "volatile-stress", "ImageDecoderDemo"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PNGDecoderTests", dependencies: ["PNGDecoder"], swiftSettings: strictSettings),

        // Issue 15: the adaptive policy's simulator (traces, synthetic workloads, static optimum).
        .target(name: "PolicySimulation", dependencies: ["VolatileCache", "VolatileSystem"], swiftSettings: strictSettings),
        .executableTarget(name: "volatile-policy-sim", dependencies: ["PolicySimulation"], swiftSettings: strictSettings),
        .testTarget(name: "PolicyTests", dependencies: ["VolatileCache", "PolicySimulation"], swiftSettings: strictSettings),
    ]
)
