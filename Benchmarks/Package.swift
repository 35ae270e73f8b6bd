// swift-tools-version: 6.1
// Benchmarks for VolatileCache's hit, miss and re-pin paths, with package-benchmark
// (ordo-one), kept apart from the root package so that it stays dependency-free.
//
//     cd Benchmarks && swift package --disable-sandbox benchmark
//     swift package --disable-sandbox benchmark thresholds check      # against Thresholds/
//     swift package --disable-sandbox --allow-writing-to-package-directory benchmark thresholds update
import PackageDescription

import struct Foundation.URL

// A path dependency is identified by its folder's name, which is whatever the clone is called.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "VolatileCacheBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CacheBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "VolatileCache", package: rootPackage),
            ],
            path: "Benchmarks/CacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        )
    ]
)
