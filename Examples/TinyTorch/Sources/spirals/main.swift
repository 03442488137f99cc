// Trains TinyTorch's two-layer MLP on two spirals and prints the loss curve.
import Foundation
import Tessera
import TinyTorch

let (x, labels) = try spirals(perClass: 200)
let model = try MLP(inputs: 2, hidden: 64, classes: 2, activation: GELU())
print("TinyTorch on Tessera: 400 points, two spirals, 2-64-64-2 GELU MLP, full-batch gradient descent")
var loss: Float = 0
for epoch in 0...800 {
    loss = try model.step(x, labels: labels, rate: 0.5)
    if epoch % 100 == 0 { print("epoch \(epoch)  loss \(loss)") }
}
let acc = try model.accuracy(x, labels: labels)
print("final loss \(loss), accuracy \(acc)")
if loss > 0.05 { print("loss did not fall below 0.05"); exit(1) }
