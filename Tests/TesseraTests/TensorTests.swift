import Testing
import Tessera

@Suite("Tensor")
struct TensorTests {
    @Test func shapesAndCounts() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t.shape == [2, 3] && t.count == 6 && t.rank == 2)
        #expect(t.scalars == [1, 2, 3, 4, 5, 6])
        let scalar = try Tensor(shape: [], scalars: [7])
        #expect(scalar.count == 1 && scalar.rank == 0)
        let empty = try Tensor(shape: [3, 0, 2], repeating: 1)
        #expect(empty.count == 0 && empty.scalars.isEmpty)
        #expect(try Tensor(shape: [4], repeating: 2.5).scalars == [2.5, 2.5, 2.5, 2.5])
    }

    @Test func countMismatchThrowsANamedError() {
        #expect(throws: TesseraError.countMismatch(shape: [2, 2], expected: 4, got: 3)) {
            try Tensor(shape: [2, 2], scalars: [1, 2, 3])
        }
        #expect(throws: TesseraError.invalidShape([-1, 2])) { try Tensor(shape: [-1, 2], repeating: 0) }
        let e = TesseraError.countMismatch(shape: [2, 2], expected: 4, got: 3)
        #expect(e.description.contains("[2, 2]") && e.description.contains("3"))
    }

    @Test func storageIsAlignedAndCopyOnWrite() throws {
        var a = try Tensor(shape: [100], repeating: 1)
        a.withUnsafeBufferPointer { #expect(UInt(bitPattern: $0.baseAddress!) % 64 == 0) }
        let b = a
        a.withUnsafeMutableBufferPointer { $0[0] = 9 }
        #expect(b.scalars[0] == 1 && a.scalars[0] == 9)
    }

    @Test func seededRandomNormalIsReproducibleAndNormal() throws {
        let a = try Tensor(randomNormal: [100_000], seed: 1)
        let b = try Tensor(randomNormal: [100_000], seed: 1)
        let c = try Tensor(randomNormal: [100_000], seed: 2)
        #expect(a == b && a != c)
        let xs = a.scalars.map(Double.init)
        let mean = xs.reduce(0, +) / Double(xs.count)
        let v = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
        #expect(abs(mean) < 0.02 && abs(v - 1) < 0.03)
    }

    @Test func reshape() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(try t.reshaped([3, 2]).shape == [3, 2])
        #expect(throws: TesseraError.reshapeMismatch(from: [2, 3], to: [4, 2])) { try t.reshaped([4, 2]) }
    }
}
