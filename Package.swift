// swift-tools-version: 6.1
import PackageDescription

// Layers (each a module; arrows are the only imports allowed):
//   CTesseraKernels (C, per-ISA) <- TesseraKernels (what: the op table, kernel dispatch)
//   TesseraTopology (where: NUMA nodes) <- TesseraRuntime (how: tiles, workers; no math)
//   TesseraKernels <- TesseraGraph (pipelines, fusion pass, printable program)
//   everything <- Tessera (public API: where a program meets a tile plan)
//   Tessera <- TesseraScaling (scale-test's logic) <- scale-test (argument parsing only)
let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
        .executable(name: "scale-test", targets: ["scale-test"]),
        // the C ABI (header: Sources/CTesseraABI/include/tessera.h)
        .library(name: "TesseraC", type: .dynamic, targets: ["TesseraC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CTesseraKernels", cSettings: [.headerSearchPath(".")]),
        .target(name: "TesseraKernels", dependencies: ["CTesseraKernels"]),
        .target(name: "TesseraTopology", dependencies: ["CTesseraKernels"]),
        .target(name: "TesseraRuntime", dependencies: ["TesseraTopology", "CTesseraKernels"]),
        .target(name: "TesseraGraph", dependencies: ["TesseraKernels"]),
        .target(name: "Tessera", dependencies: ["TesseraKernels", "TesseraTopology", "TesseraRuntime", "TesseraGraph"]),
        .target(name: "TesseraScaling", dependencies: ["Tessera", "CTesseraKernels"]),
        .target(name: "CTesseraABI", dependencies: ["CTesseraKernels"]), // for tessera_ops.def
        .target(name: "TesseraC", dependencies: ["Tessera", "CTesseraABI"]),
        .executableTarget(
            name: "scale-test",
            dependencies: ["TesseraScaling", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "_TesseraTestSupport", dependencies: ["Tessera"]),
        // release-mode command: every float32 input through sigmoid, tanh and both GELUs
        .executableTarget(name: "tessera-accuracy", dependencies: ["Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraKernelsTests", dependencies: ["TesseraKernels", "Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraTopologyTests", dependencies: ["TesseraTopology"]),
        .testTarget(name: "TesseraRuntimeTests", dependencies: ["TesseraRuntime", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraGraphTests", dependencies: ["TesseraGraph", "Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraTests", dependencies: ["Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraScalingTests", dependencies: ["TesseraScaling"]),
        .testTarget(name: "TesseraCTests", dependencies: ["TesseraC", "CTesseraABI", "_TesseraTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
