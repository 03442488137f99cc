// swift-tools-version: 6.1
// A small framework built on Tessera's public API only: a tensor with tape-based autograd,
// Linear layers, Tessera's activations, softmax and log-softmax (forward and backward), and a
// cross-entropy loss -- training a two-layer MLP on two spirals (`swift run -c release spirals`).
import PackageDescription

let package = Package(
    name: "TinyTorch",
    platforms: [.macOS(.v15)],
    products: [.library(name: "TinyTorch", targets: ["TinyTorch"])],
    dependencies: [.package(name: "Tessera", path: "../..")],
    targets: [
        .target(name: "TinyTorch", dependencies: [.product(name: "Tessera", package: "Tessera")]),
        .executableTarget(name: "spirals", dependencies: ["TinyTorch"]),
        .testTarget(name: "TinyTorchTests", dependencies: ["TinyTorch"]),
    ],
    swiftLanguageModes: [.v6]
)
