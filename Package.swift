// swift-tools-version: 6.1
import PackageDescription

// Layers: each module may import only the modules on its line (and the OS modules Foundation,
// Glibc, Darwin; Dispatch and Synchronization only where threads belong).  `.ci/run` checks
// every import against these lines (tools/check_layers.sh), so the layering is not a convention.
//   what is computed -- kernels know nothing of threads:
//   layer TesseraKernels: CTesseraKernels
//   layer TesseraGraph: TesseraKernels
//   how it is scheduled -- the runtime knows nothing of math:
//   layer TesseraTopology: CTesseraSystem Synchronization
//   layer TesseraRuntime: TesseraTopology CTesseraSystem Dispatch Synchronization
//   where they meet (the public API):
//   layer Tessera: TesseraKernels TesseraGraph TesseraTopology TesseraRuntime CTesseraKernels
//   on top:
//   layer TesseraC: Tessera TesseraRuntime CTesseraABI
//   layer TesseraScaling: Tessera CTesseraSystem Dispatch Synchronization
//   layer scale-test: TesseraScaling ArgumentParser
//   layer tessera-accuracy: Tessera _TesseraTestSupport Dispatch Synchronization
//   layer _TesseraTestSupport: Tessera CTesseraKernels
//   layer TesseraFuzzTargets: Tessera TesseraC TesseraRuntime TesseraScaling TesseraTopology _TesseraTestSupport Dispatch
//   layer tessera-fuzz: TesseraFuzzTargets
//   C: CTesseraKernels (per-ISA kernels, the op table tessera_ops.def), CTesseraSystem (OS shims),
//   CTesseraABI (the C ABI's header; it includes tessera_ops.def)
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
        .target(name: "CTesseraSystem"),
        .target(name: "TesseraTopology", dependencies: ["CTesseraSystem"]),
        .target(name: "TesseraRuntime", dependencies: ["TesseraTopology", "CTesseraSystem"]),
        .target(name: "TesseraGraph", dependencies: ["TesseraKernels"]),
        .target(name: "Tessera", dependencies: ["TesseraKernels", "TesseraTopology", "TesseraRuntime", "TesseraGraph"]),
        .target(name: "TesseraScaling", dependencies: ["Tessera", "CTesseraSystem"]),
        .target(name: "CTesseraABI", dependencies: ["CTesseraKernels"]), // for tessera_ops.def
        .target(name: "TesseraC", dependencies: ["Tessera", "CTesseraABI"]),
        .executableTarget(
            name: "scale-test",
            dependencies: ["TesseraScaling", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "_TesseraTestSupport", dependencies: ["Tessera"]),
        // release-mode command: every float32 input through sigmoid, tanh and both GELUs
        .executableTarget(name: "tessera-accuracy", dependencies: ["Tessera", "_TesseraTestSupport"]),
        // the fuzz targets (Fuzz/README.md): replayed by the tests, fuzzed by tools/fuzz.sh
        .target(name: "TesseraFuzzTargets",
                dependencies: ["Tessera", "TesseraC", "TesseraScaling", "TesseraTopology", "_TesseraTestSupport"]),
        .executableTarget(name: "tessera-fuzz", dependencies: ["TesseraFuzzTargets"]),
        .testTarget(name: "TesseraKernelsTests", dependencies: ["CTesseraKernels", "TesseraKernels", "Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraTopologyTests", dependencies: ["TesseraTopology"]),
        .testTarget(name: "TesseraRuntimeTests", dependencies: ["TesseraRuntime", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraGraphTests", dependencies: ["TesseraGraph", "Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraTests", dependencies: ["Tessera", "_TesseraTestSupport"]),
        .testTarget(name: "TesseraScalingTests", dependencies: ["TesseraScaling"]),
        .testTarget(name: "TesseraCTests", dependencies: ["TesseraC", "CTesseraABI", "_TesseraTestSupport", "TesseraFuzzTargets"]),
    ],
    swiftLanguageModes: [.v6]
)
