// swift-tools-version: 6.1
// Tessera's benchmarks: a package of its own so embedders never inherit package-benchmark.
//   cd Benchmarks && swift package benchmark
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (the clone's, not "Tessera").
let tessera = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "TesseraBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TesseraBenchmarks",
            dependencies: [
                .product(name: "Tessera", package: tessera),
                .product(name: "TesseraC", package: tessera),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TesseraBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
