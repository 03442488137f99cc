import TesseraRuntime

/// A dense, contiguous, row-major tensor of `Float`, any rank (0-d and empty included).
///
/// Storage is 64-byte aligned and owned by the runtime layer (`AlignedStorage`), shared
/// copy-on-write between copies of a `Tensor`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public let shape: [Int]
    package var storage: AlignedStorage

    /// A tensor of `shape` holding `scalars` (row-major).  Throws when the counts differ.
    public init(shape: [Int], scalars: [Float]) throws {
        let n = try elementCount(shape)
        guard n == scalars.count else { throw TesseraError.countMismatch(shape: shape, expected: n, got: scalars.count) }
        self.shape = shape
        storage = AlignedStorage(count: n)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: n) }
    }

    /// A tensor of `shape` with every element `value`.
    public init(shape: [Int], repeating value: Float) throws {
        let n = try elementCount(shape)
        self.shape = shape
        storage = AlignedStorage(count: n)
        storage.pointer.initialize(repeating: value, count: n)
    }

    /// A 1-d tensor.
    public init(_ scalars: [Float]) {
        try! self.init(shape: [scalars.count], scalars: scalars)
    }

    /// Normal(mean, std) samples from a seeded generator: the same seed gives the same tensor
    /// on every machine.
    public init(randomNormal shape: [Int], mean: Float = 0, standardDeviation: Float = 1, seed: UInt64) throws {
        let n = try elementCount(shape)
        self.shape = shape
        storage = AlignedStorage(count: n)
        var rng = SplitMix64(seed: seed)
        let p = storage.pointer
        var i = 0
        while i < n {
            // Box-Muller: two normals per pair of uniforms
            let u1 = max(Double(rng.next() >> 11) * 0x1p-53, 0x1p-53)
            let u2 = Double(rng.next() >> 11) * 0x1p-53
            let r = (-2 * _log(u1)).squareRoot()
            let z0 = r * _cos(2 * .pi * u2), z1 = r * _sin(2 * .pi * u2)
            p[i] = Float(z0) * standardDeviation + mean
            if i + 1 < n { p[i + 1] = Float(z1) * standardDeviation + mean }
            i += 2
        }
    }

    /// Uninitialised tensor of a validated shape, its storage placed for `runtime`'s NUMA
    /// nodes (internal: every element is written before it is read).
    init(uninitialized shape: [Int], count: Int, runtime: Runtime) {
        self.shape = shape
        storage = runtime.allocate(count: count)
    }

    /// A tensor of zeros whose pages are placed on the NUMA nodes that `runtime`'s workers
    /// will process them on (first touch by each node's workers; mbind with libnuma).
    public init(zeros shape: [Int], placedFor runtime: Runtime) throws {
        let n = try elementCount(shape)
        self.shape = shape
        storage = runtime.allocate(count: n, zeroed: true)
    }


    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var scalars: [Float] { Array(storage.buffer) }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(storage.buffer)
    }

    /// The same elements viewed with another shape.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let n = try elementCount(newShape)
        guard n == count else { throw TesseraError.reshapeMismatch(from: shape, to: newShape) }
        return Tensor(shape: newShape, storage: storage)
    }

    init(shape: [Int], storage: AlignedStorage) {
        self.shape = shape
        self.storage = storage
    }

    @usableFromInline mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = AlignedStorage(count: storage.count)
            copy.pointer.update(from: storage.pointer, count: storage.count)
            storage = copy
        }
    }

    /// Bitwise equality of shape and elements (NaNs with equal bits compare equal).
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        return a.storage === b.storage || memcmp(a.storage.pointer, b.storage.pointer, a.count * 4) == 0
    }

    public var description: String {
        let preview = storage.buffer.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", ..." : "")])"
    }
}

/// Small, fast, seedable generator (Steele et al.); deterministic across platforms.
package struct SplitMix64 {
    var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Darwin.sin(x) }
#endif
