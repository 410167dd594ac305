"""Kernel-prediction ISP: apply_kernels against a numpy loop, the KPN model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import models
from rawjax.isp import color
from rawjax.models import kpn

_NUMPY_PAD = {'reflect': 'reflect', 'edge': 'edge', 'zero': 'constant'}


def _normalise_numpy(w, normalization):
  if normalization == 'softmax':
    e = np.exp(w - w.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
  if normalization == 'sum_to_one':
    return w + (1.0 - w.sum(-1, keepdims=True)) / w.shape[-1]
  return w


def _reference(x, kernels, size, normalization, padding):
  """Eq. 1 as a direct loop over pixels and taps (float64 numpy)."""
  x = np.asarray(x, np.float64)
  w = _normalise_numpy(np.asarray(kernels, np.float64), normalization)
  single = w.ndim == x.ndim
  if single:
    w = w[..., None, :]
  r = size // 2
  n, h, wd, c = x.shape
  padded = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)),
                  mode=_NUMPY_PAD[padding])
  out = np.zeros((n, h, wd, w.shape[-2], c))
  for b in range(n):
    for y in range(h):
      for xx in range(wd):
        for k in range(w.shape[-2]):
          for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
              t = (oy + r) * size + (ox + r)
              out[b, y, xx, k] += (w[b, y, xx, k, t] *
                                   padded[b, y + oy + r, xx + ox + r])
  return out[..., 0, :] if single else out


# (size, normalization, padding, number of kernels K or None)
CASES = [
    (1, 'none', 'zero', None),
    (3, 'softmax', 'reflect', None),
    (3, 'sum_to_one', 'edge', 2),
    (5, 'softmax', 'zero', 3),
    (5, 'none', 'reflect', 2),
    (7, 'sum_to_one', 'reflect', None),
]


@pytest.mark.parametrize('method', ['patches', 'shift'])
@pytest.mark.parametrize('size,normalization,padding,count', CASES)
def test_apply_kernels_matches_loop(variant, method, size, normalization,
                                    padding, count):
  rng = np.random.default_rng(size * 10 + (count or 0))
  x = rng.uniform(-1, 1, (2, 8, 9, 3)).astype(np.float32)
  shape = (2, 8, 9) + ((count,) if count else ()) + (size * size,)
  kernels = rng.normal(0, 1.5, shape).astype(np.float32)
  fn = variant(functools.partial(kpn.apply_kernels, size=size,
                                 normalization=normalization, padding=padding,
                                 method=method))
  out = fn(x, kernels)
  expected = _reference(x, kernels, size, normalization, padding)
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=2e-5)


def test_identity_kernel_and_flat_input():
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (1, 6, 6, 4)).astype(np.float32)
  # A one-hot centre tap ('none') returns the input; a huge centre logit
  # under softmax does too.
  centre = np.zeros((1, 6, 6, 25), np.float32)
  centre[..., 12] = 1.0
  np.testing.assert_allclose(
      kpn.apply_kernels(x, centre, size=5, normalization='none'), x,
      atol=1e-7)
  np.testing.assert_allclose(
      kpn.apply_kernels(x, 80.0 * centre, size=5), x, atol=1e-6)
  # Normalised kernels keep a flat image flat, whatever their weights.
  flat = np.full((1, 6, 6, 4), 0.3, np.float32)
  kernels = rng.normal(0, 2, (1, 6, 6, 25)).astype(np.float32)
  for normalization in ('softmax', 'sum_to_one'):
    np.testing.assert_allclose(
        kpn.apply_kernels(flat, kernels, size=5, padding='edge',
                          normalization=normalization), flat, atol=1e-5)


def test_normalize_kernels():
  w = np.random.default_rng(1).normal(0, 3, (4, 9)).astype(np.float32)
  soft = np.asarray(kpn.normalize_kernels(w))
  assert soft.min() > 0
  np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
  projected = np.asarray(kpn.normalize_kernels(w, normalization='sum_to_one'))
  np.testing.assert_allclose(projected.sum(-1), 1.0, rtol=1e-5)
  # A projection: applying it again changes nothing.
  np.testing.assert_allclose(
      kpn.normalize_kernels(projected, normalization='sum_to_one'),
      projected, atol=1e-6)
  np.testing.assert_array_equal(
      kpn.normalize_kernels(w, normalization='none'), w)
  with pytest.raises(ValueError, match='normalization must be one of'):
    kpn.normalize_kernels(w, normalization='l2')


def test_gradients_finite_and_methods_agree():
  normalization = 'softmax'
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.uniform(0, 1, (1, 6, 7, 4)), jnp.float32)
  kernels = jnp.asarray(rng.normal(0, 1, (1, 6, 7, 2, 9)), jnp.float32)
  target = jnp.asarray(rng.uniform(0, 1, (1, 6, 7, 2, 4)), jnp.float32)

  def loss(x, k, method):
    out = kpn.apply_kernels(x, k, size=3, normalization=normalization,
                            method=method)
    return jnp.sum((out - target)**2)

  grads = {m: jax.jit(jax.grad(functools.partial(loss, method=m),
                               argnums=(0, 1)))(x, kernels)
           for m in ('patches', 'shift')}
  for g in jax.tree.leaves(grads):
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
  # The shift method's hand-written VJP equals autodiff of the einsum form.
  for a, b in zip(grads['shift'], grads['patches']):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # Only the kernels differentiated (the training case): same kernel grad.
  only_k = jax.jit(jax.grad(functools.partial(loss, method='shift'),
                            argnums=1))(x, kernels)
  np.testing.assert_allclose(only_k, grads['patches'][1], rtol=1e-4,
                             atol=1e-5)


def test_apply_kernels_errors():
  x = np.zeros((1, 4, 4, 3), np.float32)
  with pytest.raises(ValueError, match='positive odd int'):
    kpn.apply_kernels(x, np.zeros((1, 4, 4, 4)), size=2)
  with pytest.raises(ValueError, match='size\\^2 = 9 taps'):
    kpn.apply_kernels(x, np.zeros((1, 4, 4, 8)), size=3)
  with pytest.raises(ValueError, match='do not match x'):
    kpn.apply_kernels(x, np.zeros((1, 4, 5, 9)), size=3)
  with pytest.raises(ValueError, match="padding='reflect' needs"):
    kpn.apply_kernels(x, np.zeros((1, 4, 4, 81)), size=9)
  with pytest.raises(ValueError, match='padding must be one of'):
    kpn.apply_kernels(x, np.zeros((1, 4, 4, 9)), size=3, padding='wrap')
  with pytest.raises(ValueError, match='H, W, C'):
    kpn.apply_kernels(np.zeros((4, 4)), np.zeros((4, 4, 9)), size=3)


@pytest.fixture(scope='module')
def small_kpn():
  model = models.get_model('kpn', features=4, levels=1, kernel_size=3)
  x = jnp.asarray(np.random.default_rng(3).uniform(0, 1, (2, 8, 12, 4)),
                  jnp.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), x)['params']
  return model, params, x


def test_kpn_output_is_the_factorised_eq1(small_kpn):
  """Every output pixel = sRGB(M_p sum_o k_p[o] X[i + o] + b_p) per phase."""
  model, params, x = small_kpn
  both = jax.jit(lambda v, x: (model.apply(v, x),
                                model.apply(v, x, method='predict')))
  out, parts = jax.tree.map(np.asarray, both({'params': params}, x))
  assert out.shape == (2, 16, 24, 3)
  assert parts['kernels'].shape == (2, 8, 12, 4, 9)
  np.testing.assert_allclose(parts['kernels'].sum(-1), 1.0, rtol=1e-5)
  filtered = _reference(np.asarray(x), parts['raw_kernels'], 3, 'softmax',
                        'reflect')  # (2, 8, 12, 4 phases, 4 channels)
  linear = np.einsum('nhwpoc,nhwpc->nhwpo', parts['matrices'],
                     filtered) + parts['bias']
  expected = np.asarray(color.srgb_encode(linear.astype(np.float32)))
  for p, (dy, dx) in enumerate(kpn.PHASES):
    np.testing.assert_allclose(out[:, dy::2, dx::2], expected[..., p, :],
                               rtol=1e-4, atol=1e-5)


def test_kpn_parameters_and_initialisation(small_kpn):
  model, params, _ = small_kpn
  assert isinstance(models.get_model('kpn'), kpn.KPN)
  head = params['backbone']['decoder']['head']['kernel']
  assert head.shape == (1, 1, 4, 4 * (9 + 12 + 3))
  bound = 1 / np.sqrt(4)  # PyTorch default: U(+-1/sqrt(fan_in))
  assert np.abs(head).max() <= bound and np.abs(head).max() > 0.5 * bound
  np.testing.assert_array_equal(
      params['base_matrix'],
      [[1, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1]])
  assert 'context' in params
  no_context = models.get_model('kpn', features=4, levels=1, kernel_size=3,
                                global_context=False, output='linear')
  p2 = jax.eval_shape(no_context.init, jax.random.PRNGKey(0),
                      jnp.zeros((1, 4, 4, 4)))['params']
  assert 'context' not in p2


def test_kpn_bad_inputs(small_kpn):
  model, params, x = small_kpn
  with pytest.raises(ValueError, match='4 channels'):
    model.apply({'params': params}, x[..., :3])
  with pytest.raises(ValueError, match='multiples of'):
    model.apply({'params': params}, x[:, :7])
  with pytest.raises(ValueError, match='normalization must be one of'):
    models.get_model('kpn', normalization='l1').init(
        jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 4)))
  with pytest.raises(ValueError, match='no option'):
    models.get_model('kpn', kernel=3)
