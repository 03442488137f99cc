/// A user error.  Detected before any worker starts: when an op throws, nothing has been
/// written to the output.
public enum TesseraError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `scalars.count` does not match the shape's element count
    case countMismatch(shape: [Int], expected: Int, got: Int)
    /// a negative extent
    case invalidShape([Int])
    /// `dim` is outside `-rank..<rank` (PyTorch's rule; a 0-d tensor accepts -1 and 0)
    case dimOutOfRange(dim: Int, rank: Int)
    /// an output tensor or buffer whose shape is not the input's
    case outputShapeMismatch(expected: [Int], got: [Int])
    /// two buffers (named in the string, e.g. "input and output") overlap without being exactly
    /// the same memory where that is allowed
    case overlappingBuffers(String)
    /// a null pointer for a non-empty tensor
    case nullPointer(String)
    /// a reshape whose element count differs
    case reshapeMismatch(from: [Int], to: [Int])
    case invalidArgument(String)
    /// a backward call without the saved tensor its op's gradient reads
    case missingSavedTensor(op: String, needs: String)
    /// a gradient or saved tensor whose shape (or count) is not the others'
    case gradientShapeMismatch(name: String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case .countMismatch(let s, let e, let g): "shape \(s) holds \(e) elements but \(g) scalars were given"
        case .invalidShape(let s): "shape \(s) has a negative extent"
        case .dimOutOfRange(let d, let r): "dim \(d) is out of range for a tensor of rank \(r) (expected \(-max(r, 1))...\(max(r, 1) - 1))"
        case .outputShapeMismatch(let e, let g): "output shape \(g) does not match the input shape \(e)"
        case .overlappingBuffers(let what): "\(what) overlap (only output == input, or gradInput == gradOutput, may share memory)"
        case .nullPointer(let what): "\(what) is null"
        case .reshapeMismatch(let f, let t): "cannot reshape \(f) to \(t): element counts differ"
        case .invalidArgument(let m): m
        case .missingSavedTensor(let op, let needs): "\(op) backward needs \(needs)"
        case .gradientShapeMismatch(let n, let e, let g): "\(n) has shape \(g), expected \(e)"
        }
    }
}

/// Normalises a PyTorch-style dim (negative counts from the end).
@usableFromInline
func normalizedDim(_ dim: Int, rank: Int) throws -> Int {
    let r = max(rank, 1)
    guard dim >= -r && dim < r else { throw TesseraError.dimOutOfRange(dim: dim, rank: rank) }
    return dim < 0 ? dim + r : dim
}

/// Element count of `shape`, validating it.
func elementCount(_ shape: [Int]) throws -> Int {
    guard shape.allSatisfy({ $0 >= 0 }) else { throw TesseraError.invalidShape(shape) }
    return shape.reduce(1, *)
}
