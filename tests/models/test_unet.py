"""Layers with PyTorch's defaults, and the raw-to-raw U-Net."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.measure import block_reduce

from rawjax import models
from rawjax.models import layers

RNG = np.random.default_rng(0)


def _conv_reference(x, kernel, bias, stride, padding):
  """PyTorch's Conv2d by its definition (cross-correlation), float64."""
  (top, bottom), (left, right) = padding
  x = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right),
                                    (0, 0)))
  kh, kw, _, out = kernel.shape
  h = (x.shape[1] - kh) // stride + 1
  w = (x.shape[2] - kw) // stride + 1
  y = np.zeros((x.shape[0], h, w, out))
  for i in range(kh):
    for j in range(kw):
      window = x[:, i:i + stride * h:stride, j:j + stride * w:stride]
      y += window @ kernel[i, j].astype(np.float64)
  return y + bias


def _conv_transpose_reference(x, weight, bias):
  """PyTorch's ConvTranspose2d(k=2, s=2) with weight (in, out, 2, 2)."""
  n, h, w, _ = x.shape
  out = weight.shape[1]
  y = np.zeros((n, 2 * h, 2 * w, out))
  for dy in range(2):
    for dx in range(2):
      y[:, dy::2, dx::2] = x.astype(np.float64) @ weight[:, :, dy, dx]
  return y + bias


@pytest.mark.parametrize('kernel_size,stride,padding', [
    (3, 1, 1), (3, 2, 1), (1, 1, 0), (4, 2, ((1, 2), (0, 1)))])
def test_conv_matches_pytorch_definition(variant, kernel_size, stride,
                                         padding):
  x = RNG.uniform(-1, 1, (2, 9, 10, 3)).astype(np.float32)
  module = layers.Conv(5, kernel_size, strides=stride, padding=padding)
  params = module.init(jax.random.PRNGKey(0), x)['params']
  y = variant(module.apply)({'params': params}, x)
  pad = padding if not isinstance(padding, int) else ((padding,) * 2,) * 2
  expected = _conv_reference(x, np.asarray(params['kernel']),
                             np.asarray(params['bias']), stride, pad)
  np.testing.assert_allclose(y, expected, atol=2e-5)


def test_conv_keeps_leading_dims():
  x = RNG.uniform(size=(2, 3, 8, 8, 2)).astype(np.float32)
  module = layers.Conv(4, 3, padding=1)
  params = module.init(jax.random.PRNGKey(0), x)
  y = module.apply(params, x)
  flat = module.apply(params, x.reshape(6, 8, 8, 2))
  np.testing.assert_allclose(y.reshape(flat.shape), flat, atol=1e-6)


def _check_uniform(values, bound):
  values = np.asarray(values).ravel()
  assert np.abs(values).max() <= bound
  # U(-b, b) has variance b^2 / 3; with >= 9000 draws the estimate is
  # within 5% with overwhelming probability.
  np.testing.assert_allclose(values.var(), bound**2 / 3, rtol=0.05)


def test_conv_init_is_pytorch_default():
  x = np.zeros((1, 8, 8, 40), np.float32)
  params = layers.Conv(64, 3, padding=1).init(jax.random.PRNGKey(1),
                                              x)['params']
  bound = 1 / np.sqrt(40 * 9)
  _check_uniform(params['kernel'], bound)
  assert np.abs(params['bias']).max() <= bound


def test_conv_transpose_matches_pytorch_definition(variant):
  x = RNG.uniform(-1, 1, (2, 5, 6, 7)).astype(np.float32)
  module = layers.ConvTranspose2x2(3)
  params = module.init(jax.random.PRNGKey(0), x)['params']
  y = variant(module.apply)({'params': params}, x)
  weight = np.asarray(params['kernel']).transpose(2, 3, 0, 1)  # (in, out, 2, 2)
  expected = _conv_transpose_reference(x, weight, np.asarray(params['bias']))
  np.testing.assert_allclose(y, expected, atol=2e-5)
  # The same as XLA's transposed convolution with the spatially flipped
  # kernel (PyTorch's convention).
  xla = jax.lax.conv_transpose(
      x, params['kernel'][::-1, ::-1], (2, 2), 'VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + params['bias']
  np.testing.assert_allclose(y, xla, atol=2e-5)


def test_conv_transpose_init_uses_pytorch_fan_in():
  x = np.zeros((1, 4, 4, 48), np.float32)
  params = layers.ConvTranspose2x2(96).init(jax.random.PRNGKey(2),
                                            x)['params']
  # PyTorch takes fan_in from the weight's 2nd axis: out_channels * 2 * 2.
  bound = 1 / np.sqrt(96 * 4)
  _check_uniform(params['kernel'], bound)
  assert np.abs(params['bias']).max() <= bound


def test_depth_to_space_order(variant):
  x = RNG.uniform(size=(2, 3, 4, 12)).astype(np.float32)
  y = variant(functools.partial(layers.depth_to_space, block=2))(x)
  assert y.shape == (2, 6, 8, 3)
  for dy in range(2):
    for dx in range(2):
      np.testing.assert_array_equal(
          y[:, dy::2, dx::2], x[..., (dy * 2 + dx) * 3:(dy * 2 + dx + 1) * 3])
  with pytest.raises(ValueError, match='multiple of block'):
    layers.depth_to_space(x[..., :10])


def test_max_pool_matches_block_reduce(variant):
  x = RNG.uniform(size=(2, 8, 6, 3)).astype(np.float32)
  y = variant(layers.max_pool_2x2)(x)
  np.testing.assert_array_equal(y, block_reduce(x, (1, 2, 2, 1), np.max))
  odd = RNG.uniform(size=(1, 7, 5, 2)).astype(np.float32)
  np.testing.assert_array_equal(  # PyTorch floors: last row/column dropped
      layers.max_pool_2x2(odd), block_reduce(odd[:, :6, :4], (1, 2, 2, 1),
                                             np.max))
  grad = jax.grad(lambda v: layers.max_pool_2x2(v).sum())(x)
  assert grad.sum() == y.size and np.all((grad == 0) | (grad == 1))


def _conv_count(cin, cout, k=3):
  return k * k * cin * cout + cout


def _deep_wb_count(c_in, c_out, f):
  """Parameters of Deep-WB's single-task U-Net (widths f, 2f, 4f, 8f, 16f)."""
  enc = (_conv_count(c_in, f) + _conv_count(f, f) +
         sum(_conv_count(f * 2**(k - 1), f * 2**k) +
             _conv_count(f * 2**k, f * 2**k) for k in (1, 2, 3)) +
         _conv_count(8 * f, 16 * f))
  dec = _conv_count(16 * f, 16 * f) + 4 * 16 * f * 8 * f + 8 * f
  for k in (3, 2, 1):
    width = f * 2**k
    dec += _conv_count(2 * width, width) + _conv_count(width, width)
    dec += 4 * width * width // 2 + width // 2
  dec += _conv_count(2 * f, f) + _conv_count(f, f) + _conv_count(f, c_out, 1)
  return enc + dec


def test_default_unet_is_deep_wb_sized():
  model = models.get_model('unet')
  x = jax.ShapeDtypeStruct((1, 64, 64, 4), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)['params']
  count = sum(np.prod(p.shape) for p in jax.tree.leaves(params))
  assert count == _deep_wb_count(4, 4, 24)
  blocks = jax.eval_shape(
      functools.partial(model.apply, method='encode'), {'params': params}, x)
  assert [b.shape for b in blocks] == [
      (1, 64, 64, 24), (1, 32, 32, 48), (1, 16, 16, 96), (1, 8, 8, 192),
      (1, 4, 4, 384)]


SMALL = models.UNet(features=4, levels=2)


@pytest.fixture(scope='module')
def two_nets():
  x = jnp.zeros((1, 8, 8, 4))
  return (SMALL.init(jax.random.PRNGKey(1), x)['params'],
          SMALL.init(jax.random.PRNGKey(2), x)['params'])


def test_decoder_swap(variant, two_nets):
  params_a, params_b = two_nets
  x = RNG.uniform(size=(2, 16, 8, 4)).astype(np.float32)

  def swap(pa, pb, image):
    features = SMALL.apply({'params': pa}, image, method='encode')
    return SMALL.apply({'params': pb}, features, method='decode')

  mapped = variant(swap)(params_a, params_b, x)
  assert mapped.shape == x.shape
  own = SMALL.apply({'params': params_a}, x)
  np.testing.assert_allclose(swap(params_a, params_a, x), own, atol=1e-6)
  assert not np.allclose(mapped, own)


def test_decoder_reads_every_encoder_block(two_nets):
  params, _ = two_nets
  x = RNG.uniform(size=(1, 8, 8, 4)).astype(np.float32)
  features = SMALL.apply({'params': params}, x, method='encode')
  assert len(features) == SMALL.levels + 1
  grads = jax.grad(lambda f: SMALL.apply({'params': params}, f,
                                         method='decode').sum())(features)
  for g in grads:  # every skip (and the bottleneck) reaches the output
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_gradients_are_finite(two_nets):
  params, _ = two_nets
  x = RNG.uniform(size=(2, 8, 8, 4)).astype(np.float32)
  grads = jax.jit(jax.grad(
      lambda p: jnp.sum((SMALL.apply({'params': p}, x) - x)**2)))(params)
  leaves = jax.tree.leaves(grads)
  assert all(np.all(np.isfinite(g)) for g in leaves)
  assert any(np.abs(g).max() > 0 for g in leaves)


def test_from_params_rebuilds_the_module(two_nets):
  assert models.UNet.from_params(two_nets[0]) == SMALL
  with pytest.raises(ValueError, match='not a UNet'):
    models.UNet.from_params({'encoder': {}})


def test_bad_inputs_are_named(two_nets):
  params, _ = two_nets
  with pytest.raises(ValueError, match='multiples of 2\\*\\*levels = 4'):
    SMALL.apply({'params': params}, jnp.zeros((1, 6, 8, 4)))
  with pytest.raises(ValueError, match='4 input channels'):
    SMALL.apply({'params': params}, jnp.zeros((1, 8, 8, 3)))
  features = SMALL.apply({'params': params}, jnp.zeros((1, 8, 8, 4)),
                         method='encode')
  with pytest.raises(ValueError, match='expected 3 encoder outputs'):
    SMALL.apply({'params': params}, features[:2], method='decode')


def test_registry():
  assert 'unet' in models.model_names()
  assert models.get_model('unet', features=8) == models.UNet(features=8)
  assert models.model_from_config({'name': 'unet', 'levels': 3}).levels == 3
  with pytest.raises(ValueError, match="unknown model 'vnet'.*unet"):
    models.get_model('vnet')
  with pytest.raises(ValueError, match=r"no option\(s\) \['featurs'\]"):
    models.get_model('unet', featurs=8)
  with pytest.raises(ValueError, match='already registered'):
    models.register_model('unet')(nn.Dense)
