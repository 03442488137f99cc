"""Tests of the `tessera` module against numpy (CI runs them where numpy exists):
    python3 -m unittest discover -s Examples/python -p 'test_*.py'
"""
import unittest

import numpy as np

import tessera


def sigmoid(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


class TesseraModuleTests(unittest.TestCase):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((64, 300)) * 3).astype(np.float32)

    def close(self, got, want, rtol=2e-6, atol=1e-7):
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol)

    def test_every_op_of_the_table_is_a_function(self):
        names = tessera.ops()
        self.assertIn("gelu", names)
        for name in names:
            y = getattr(tessera, name)(self.x)
            self.assertEqual((y.shape, y.dtype), (self.x.shape, np.float32))
            dx = getattr(tessera, name + "_backward")(self.x, input=self.x, output=y)
            self.assertEqual(dx.shape, self.x.shape)
        self.assertTrue(tessera.version())

    def test_values_match_numpy(self):
        x64 = self.x.astype(np.float64)
        self.close(tessera.relu(self.x), np.maximum(x64, 0))
        self.close(tessera.sigmoid(self.x), sigmoid(self.x))
        self.close(tessera.tanh(self.x, threads=2), np.tanh(x64))
        self.close(tessera.leaky_relu(self.x, 0.2), np.where(x64 > 0, x64, 0.2 * x64))
        self.close(tessera.softplus(self.x, 2.0, 20.0), np.log1p(np.exp(2 * x64)) / 2, rtol=5e-6)
        e = np.exp(x64 - x64.max(axis=1, keepdims=True))
        self.close(tessera.softmax(self.x), e / e.sum(axis=1, keepdims=True))
        self.close(tessera.log_softmax(self.x, dim=1), np.log(e / e.sum(axis=1, keepdims=True)), rtol=1e-6, atol=1e-6)
        e0 = np.exp(x64 - x64.max(axis=0, keepdims=True))
        self.close(tessera.softmax(self.x, dim=0), e0 / e0.sum(axis=0, keepdims=True))

    def test_backward_matches_numpy(self):
        dy = self.rng.standard_normal(self.x.shape).astype(np.float32)
        y = tessera.sigmoid(self.x)
        self.close(tessera.sigmoid_backward(dy, output=y), dy * y.astype(np.float64) * (1 - y), rtol=1e-5, atol=1e-6)
        self.close(tessera.relu_backward(dy, input=self.x), np.where(self.x > 0, dy, 0))
        p = tessera.softmax(self.x)
        s = (dy.astype(np.float64) * p).sum(axis=1, keepdims=True)
        self.close(tessera.softmax_backward(dy, p), p * (dy - s), rtol=1e-5, atol=1e-6)
        lp = tessera.log_softmax(self.x)
        self.close(tessera.log_softmax_backward(dy, lp), dy - np.exp(lp.astype(np.float64)) * dy.sum(axis=1, keepdims=True),
                   rtol=1e-5, atol=1e-5)

    def test_out_and_views(self):
        out = np.empty_like(self.x)
        self.assertIs(tessera.gelu(self.x, out=out), out)
        np.testing.assert_array_equal(out, tessera.gelu(self.x))
        # a view of the first 100 columns: rows are contiguous, the call is strided, same bits
        view = self.x[:, :100]
        np.testing.assert_array_equal(tessera.gelu(view), tessera.gelu(np.ascontiguousarray(view)))
        np.testing.assert_array_equal(tessera.softmax(view), tessera.softmax(np.ascontiguousarray(view)))
        wide = np.zeros((64, 400), dtype=np.float32)
        tessera.tanh(view, out=wide[:, 200:300])
        np.testing.assert_array_equal(wide[:, 200:300], tessera.tanh(np.ascontiguousarray(view)))
        self.assertEqual(np.count_nonzero(wide[:, :200]), 0)

    def test_bad_input_raises_with_tesseras_message(self):
        with self.assertRaisesRegex(TypeError, "float32"):
            tessera.relu(self.x.astype(np.float64))
        with self.assertRaisesRegex(ValueError, "contiguous"):
            tessera.relu(np.zeros((4, 5, 6), dtype=np.float32)[:, :, ::2])
        with self.assertRaisesRegex(ValueError, "shape"):
            tessera.relu(self.x, out=np.empty((3,), dtype=np.float32))
        with self.assertRaisesRegex(tessera.TesseraError, "dim 3 is out of range") as e:
            tessera.softmax(self.x, dim=3)
        self.assertEqual(e.exception.status, 3)
        with self.assertRaisesRegex(tessera.TesseraError, "invalid parameters"):
            tessera.hardtanh(self.x, 2.0, -2.0)
        with self.assertRaisesRegex(tessera.TesseraError, "overlap"):
            tessera.relu(self.x[:, :100], out=self.x[:, 50:150])
        with self.assertRaisesRegex(tessera.TesseraError, "needs the forward's output"):
            tessera.tanh_backward(self.x, input=self.x)
        with self.assertRaises(AttributeError):
            tessera.swish
        with self.assertRaisesRegex(TypeError, "takes 1 parameter"):
            tessera.leaky_relu(self.x, 0.1, 0.2)


if __name__ == "__main__":
    unittest.main()
