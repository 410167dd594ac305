"""`rawjax.models.conv`: the convolution with the banded CPU weight gradient.

References: `lax.conv_general_dilated` and `jax.grad` of it (XLA's own
backward-filter convolution), and a float64 numpy sum over the taps of the
weight-gradient formula (the module docstring's equation).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax.models import conv

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _banded_everywhere(monkeypatch):
  # The small test shapes would otherwise take XLA's own weight gradient.
  monkeypatch.setattr(conv, 'BANDED_MIN_PIXELS', 0)

# (x shape, kernel shape, strides, padding, dilation)
CASES = [
    ((2, 17, 13, 5), (3, 3, 5, 7), 1, 1, 1),
    ((2, 17, 13, 5), (3, 3, 5, 7), 2, 1, 1),
    ((1, 20, 22, 4), (7, 7, 4, 6), 2, 0, 1),
    ((2, 16, 16, 3), (4, 4, 3, 8), 2, 1, 1),
    ((1, 19, 21, 6), (3, 3, 6, 5), 1, 2, 2),
    ((2, 9, 9, 8), (1, 1, 8, 4), 1, 0, 1),
    ((2, 9, 9, 8), (1, 1, 8, 4), 2, 0, 1),
    ((1, 6, 7, 3), (1, 1, 3, 2), 1, 1, 1),
    ((2, 12, 10, 3), (5, 5, 3, 2), 1, ((1, 3), (2, 0)), 1),
]


def _plain(x, kernel, strides, padding, dilation):
  (top, bottom), (left, right) = conv._explicit_padding(padding)  # pylint: disable=protected-access
  return jax.lax.conv_general_dilated(
      x, kernel, (strides, strides), ((top, bottom), (left, right)),
      rhs_dilation=(dilation, dilation),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _numpy_weight_gradient(x, dy, kernel_shape, strides, padding, dilation):
  """dW[a, b, i, o] = sum_{n,y,x} xpad[n, s y + d a, s x + d b, i] dy[n,y,x,o]."""
  (top, bottom), (left, right) = conv._explicit_padding(padding)  # pylint: disable=protected-access
  xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right),
                                     (0, 0)))
  kh, kw, _, _ = kernel_shape
  _, out_h, out_w, _ = dy.shape
  s, d = strides, dilation
  out = np.zeros(kernel_shape)
  for a in range(kh):
    for b in range(kw):
      tap = xp[:, d * a:d * a + s * (out_h - 1) + 1:s,
               d * b:d * b + s * (out_w - 1) + 1:s, :]
      out[a, b] = np.einsum('nyxi,nyxo->io', tap, dy.astype(np.float64))
  return out


@pytest.mark.parametrize('case', CASES, ids=str)
def test_weight_gradient_equals_the_formula_in_float64(case):
  xs, ks, s, p, d = case
  x = RNG.normal(size=xs).astype(np.float32)
  y_shape = jax.eval_shape(lambda a: _plain(a, np.zeros(ks, np.float32), s,
                                            p, d), x).shape
  dy = RNG.normal(size=y_shape).astype(np.float32)
  want = _numpy_weight_gradient(x, dy, ks, s, p, d)
  got = jax.jit(lambda a, g: conv.weight_gradient(
      a, g, kernel_shape=ks, strides=(s, s),
      padding=conv._explicit_padding(p),  # pylint: disable=protected-access
      dilation=(d, d)))(x, dy)
  assert got.shape == ks and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=0,
                             atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize('case', CASES, ids=str)
def test_conv2d_forward_and_gradients_equal_xlas(case):
  xs, ks, s, p, d = case
  x = jnp.asarray(RNG.normal(size=xs), jnp.float32)
  kernel = jnp.asarray(RNG.normal(size=ks), jnp.float32)
  ours = lambda a, k: conv.conv2d(a, k, strides=s, padding=p, dilation=d)  # noqa: E731
  theirs = lambda a, k: _plain(a, k, s, p, d)  # noqa: E731
  if ks[:2] == (1, 1) and s == 1:  # a dot: the same sum, another order
    np.testing.assert_allclose(ours(x, kernel), theirs(x, kernel), rtol=0,
                               atol=1e-5 * np.abs(theirs(x, kernel)).max())
  else:
    np.testing.assert_array_equal(ours(x, kernel), theirs(x, kernel))
  loss = lambda f: lambda a, k: jnp.sum(jnp.sin(f(a, k)))  # noqa: E731
  want = jax.grad(loss(theirs), (0, 1))(x, kernel)
  # Eagerly once (each band dispatched op by op is slow), jitted everywhere.
  grads = [jax.jit(jax.grad(loss(ours), (0, 1)))]
  if case == CASES[0]:
    grads.append(jax.grad(loss(ours), (0, 1)))
  for grad in grads:
    got = grad(x, kernel)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * np.abs(w).max())


def test_many_bands_and_a_ragged_last_band(monkeypatch):
  # A band budget of a few rows: 5 bands over 17 output rows, the last one
  # partly past the end (zero output gradient there).
  monkeypatch.setattr(conv, 'BAND_BYTES', 2 * 13 * 45 * 4 * 4)
  x = RNG.normal(size=(2, 17, 13, 5)).astype(np.float32)
  dy = RNG.normal(size=(2, 17, 13, 7)).astype(np.float32)
  assert conv._band_rows(2, 13, 45, 17) == 4  # pylint: disable=protected-access
  got = jax.jit(lambda a, g: conv.weight_gradient(
      a, g, kernel_shape=(3, 3, 5, 7), padding=((1, 1), (1, 1))))(x, dy)
  want = _numpy_weight_gradient(x, dy, (3, 3, 5, 7), 1, 1, 1)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_conv2d_under_vmap_equals_the_batched_call():
  x = jnp.asarray(RNG.normal(size=(3, 2, 8, 8, 4)), jnp.float32)
  kernel = jnp.asarray(RNG.normal(size=(3, 3, 4, 6)), jnp.float32)
  f = lambda a: jnp.sum(conv.conv2d(a, kernel, padding=1) ** 2)  # noqa: E731
  per_item = jax.jit(jax.vmap(jax.grad(f)))(x)
  np.testing.assert_allclose(per_item[1], jax.jit(jax.grad(f))(x[1]),
                             rtol=1e-6, atol=1e-5)
  kernel_grads = jax.jit(jax.vmap(jax.grad(
      lambda k, a: jnp.sum(conv.conv2d(a, k, padding=1) ** 2)),
                                  in_axes=(None, 0)))(kernel, x)
  assert kernel_grads.shape == (3,) + kernel.shape
  assert np.isfinite(np.asarray(kernel_grads)).all()


def test_small_outputs_keep_xlas_weight_gradient(monkeypatch):
  monkeypatch.setattr(conv, 'BANDED_MIN_PIXELS', 10**9)
  x = jnp.asarray(RNG.normal(size=(1, 8, 8, 3)), jnp.float32)
  kernel = jnp.asarray(RNG.normal(size=(3, 3, 3, 4)), jnp.float32)
  loss = lambda f: lambda k: jnp.sum(f(k) ** 2)  # noqa: E731
  ours = jax.jit(jax.grad(loss(lambda k: conv.conv2d(x, k, padding=1))))
  hlo = ours.lower(kernel).as_text()
  assert 'while' not in hlo  # no band loop
  np.testing.assert_array_equal(
      ours(kernel), jax.jit(jax.grad(loss(lambda k: _plain(x, k, 1, 1, 1))))(
          kernel))


def test_conv2d_names_a_wrong_shape():
  with pytest.raises(ValueError, match='conv2d: expected x'):
    conv.conv2d(jnp.zeros((8, 8, 3)), jnp.zeros((3, 3, 3, 4)))
  with pytest.raises(ValueError, match='same C'):
    conv.conv2d(jnp.zeros((1, 8, 8, 3)), jnp.zeros((3, 3, 4, 4)))
