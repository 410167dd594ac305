"""CycleGAN's ResNet generator: layout, parameter count, layers, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import models
from rawjax.models import resnet_generator as rg

RNG = np.random.default_rng(0)


def _official_count(in_nc, out_nc, ngf, n_blocks):
  """Parameters of the official ResnetGenerator (instance norm, affine=False:
  no norm parameters; every convolution has a bias), layer by layer."""
  def conv(cin, cout, k):
    return k * k * cin * cout + cout
  total = conv(in_nc, ngf, 7)                                    # c7s1-ngf
  total += conv(ngf, 2 * ngf, 3) + conv(2 * ngf, 4 * ngf, 3)     # d2ngf, d4ngf
  total += n_blocks * 2 * conv(4 * ngf, 4 * ngf, 3)              # R4ngf x n
  total += conv(4 * ngf, 2 * ngf, 3) + conv(2 * ngf, ngf, 3)     # transposed
  return total + conv(ngf, out_nc, 7)                            # c7s1-out


def _count(module, shape):
  params = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          jnp.zeros(shape))['params']
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def test_parameter_count_matches_the_official_layout():
  # The commonly quoted figure for CycleGAN's 3 -> 3 resnet_9blocks.
  assert _official_count(3, 3, 64, 9) == 11_378_179
  assert _count(rg.ResnetGenerator(), (1, 32, 32, 3)) == 11_378_179
  for in_nc, out_nc, ngf, blocks in [(4, 4, 64, 9), (4, 3, 32, 6)]:
    module = rg.ResnetGenerator(in_channels=in_nc, out_channels=out_nc,
                                features=ngf, num_blocks=blocks)
    assert _count(module, (1, 32, 32, in_nc)) == _official_count(
        in_nc, out_nc, ngf, blocks)


def test_registered():
  module = models.get_model('resnet_generator', in_channels=4, out_channels=4)
  assert isinstance(module, rg.ResnetGenerator)
  assert module.in_channels == 4 and module.num_blocks == 9


def _conv_transpose_reference(x, weight, bias):
  """PyTorch's ConvTranspose2d(k=3, s=2, p=1, output_padding=1) by its
  definition: input pixel i writes output 2 i - 1 + k; weight (in, out, 3,
  3)."""
  n, h, w, _ = x.shape
  y = np.zeros((n, 2 * h + 2, 2 * w + 2, weight.shape[1]))  # 1-pixel margin
  for ky in range(3):
    for kx in range(3):
      contrib = x.astype(np.float64) @ weight[:, :, ky, kx]
      y[:, ky:ky + 2 * h:2, kx:kx + 2 * w:2] += contrib
  return y[:, 1:2 * h + 1, 1:2 * w + 1] + bias


def test_conv_transpose_matches_pytorch_definition(variant):
  x = RNG.normal(size=(2, 5, 7, 6)).astype(np.float32)
  kernel = RNG.normal(size=(3, 3, 6, 4)).astype(np.float32)
  bias = RNG.normal(size=4).astype(np.float32)
  module = rg.ConvTranspose3x3Stride2(4)
  y = variant(module.apply)({'params': {'kernel': kernel, 'bias': bias}}, x)
  expected = _conv_transpose_reference(x, kernel.transpose(2, 3, 0, 1), bias)
  assert y.shape == (2, 10, 14, 4)
  np.testing.assert_allclose(y, expected, atol=2e-5)


def test_conv_transpose_matches_lax_conv_transpose():
  x = RNG.normal(size=(1, 6, 6, 5)).astype(np.float32)
  kernel = RNG.normal(size=(3, 3, 5, 3)).astype(np.float32)
  y = rg.ConvTranspose3x3Stride2(3).apply(
      {'params': {'kernel': kernel, 'bias': np.zeros(3, np.float32)}}, x)
  # transpose_kernel: the rhs is the forward convolution's kernel, whose
  # (in, out) are the transposed convolution's (out, in).
  expected = jax.lax.conv_transpose(
      x, np.swapaxes(kernel, 2, 3), (2, 2), ((1, 2), (1, 2)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), transpose_kernel=True)
  np.testing.assert_allclose(y, expected, atol=2e-5)


def test_instance_norm_and_reflection_pad():
  x = RNG.normal(2.0, 3.0, size=(2, 6, 5, 3)).astype(np.float32)
  y = np.asarray(rg.instance_norm(x))
  np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=(1, 2)), 1, atol=1e-4)
  padded = np.asarray(rg.reflect_pad(x, 2))
  assert padded.shape == (2, 10, 9, 3)
  # Reflection: the edge row is not repeated.
  np.testing.assert_array_equal(padded[:, 0, 2:-2], x[:, 2])
  np.testing.assert_array_equal(padded[:, 2:-2, 1], x[:, :, 1])


def test_init_is_cyclegan_normal():
  params = rg.ResnetGenerator(features=16, num_blocks=2).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))['params']
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  kernels = np.concatenate([np.ravel(v) for path, v in flat
                            if path[-1].key == 'kernel'])
  biases = [v for path, v in flat if path[-1].key == 'bias']
  assert abs(kernels.std() - 0.02) < 0.001 and abs(kernels.mean()) < 0.001
  assert all(np.all(b == 0) for b in biases)


@pytest.mark.parametrize('value_range,low,high', [('unit', 0.0, 1.0),
                                                  ('signed', -1.0, 1.0)])
def test_forward_jitted_range_and_finite_gradients(value_range, low, high):
  module = rg.ResnetGenerator(in_channels=4, out_channels=4, features=8,
                              num_blocks=2, value_range=value_range)
  x = jnp.asarray(RNG.uniform(low, high, (2, 16, 24, 4)).astype(np.float32))
  params = module.init(jax.random.PRNGKey(1), x)['params']
  # Larger weights than the init so the output is not just near tanh(0).
  params = jax.tree.map(lambda p: p * 20.0, params)
  y = jax.jit(module.apply)({'params': params}, x)
  assert y.shape == x.shape
  assert float(y.min()) >= low and float(y.max()) <= high
  assert float(y.std()) > 1e-3

  def loss(p, image):
    return jnp.mean(jnp.square(module.apply({'params': p}, image) - 0.5))
  grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  leaves = jax.tree.leaves(grads)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
  assert any(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_unit_range_is_the_official_network_between_normalisations():
  unit = rg.ResnetGenerator(features=8, num_blocks=1)
  signed = rg.ResnetGenerator(features=8, num_blocks=1, value_range='signed')
  x = jnp.asarray(RNG.uniform(size=(1, 16, 16, 3)).astype(np.float32))
  params = jax.tree.map(lambda p: p * 10.0,
                        unit.init(jax.random.PRNGKey(2), x)['params'])
  y_unit = unit.apply({'params': params}, x)
  y_signed = signed.apply({'params': params}, 2 * x - 1)
  np.testing.assert_allclose(y_unit, (y_signed + 1) / 2, atol=1e-6)


@pytest.mark.parametrize('shape,option,match', [
    ((1, 16, 16, 3), {'in_channels': 4}, 'expected'),
    ((1, 18, 16, 3), {}, 'multiples of 4'),
    ((1, 4, 4, 3), {}, '>= 8'),
    ((1, 16, 16, 3), {'value_range': 'raw'}, 'value_range'),
])
def test_rejects_bad_inputs(shape, option, match):
  module = rg.ResnetGenerator(features=4, num_blocks=1, **option)
  with pytest.raises(ValueError, match=match):
    module.init(jax.random.PRNGKey(0), jnp.zeros(shape))


def test_train_flag_is_accepted_and_changes_nothing():
  module = rg.ResnetGenerator(features=4, num_blocks=1)
  x = jnp.asarray(RNG.uniform(size=(1, 8, 8, 3)).astype(np.float32))
  params = module.init(jax.random.PRNGKey(3), x)['params']
  apply = functools.partial(module.apply, {'params': params})
  np.testing.assert_array_equal(apply(x, train=True), apply(x))


def test_pad_input_runs_any_size_and_changes_nothing_at_multiples_of_4():
  module = rg.ResnetGenerator(in_channels=4, out_channels=4, features=4,
                              num_blocks=1)
  padded = rg.ResnetGenerator(in_channels=4, out_channels=4, features=4,
                              num_blocks=1, pad_input=True)
  x = jnp.asarray(RNG.uniform(size=(1, 12, 16, 4)).astype(np.float32))
  params = jax.tree.map(lambda p: p * 10.0,
                        module.init(jax.random.PRNGKey(4), x)['params'])
  np.testing.assert_array_equal(padded.apply({'params': params}, x),
                                module.apply({'params': params}, x))
  # 10 x 13 is reflect-padded to 12 x 16, run, and cropped back: the crop
  # of the network on the explicitly padded image.
  odd = x[:, :10, :13]
  reflected = jnp.pad(odd, ((0, 0), (0, 2), (0, 3), (0, 0)), mode='reflect')
  y = jax.jit(padded.apply)({'params': params}, odd)
  assert y.shape == (1, 10, 13, 4)
  np.testing.assert_allclose(
      y, module.apply({'params': params}, reflected)[:, :10, :13], atol=1e-5)
  assert padded.apply({'params': params}, x[:, :5, :6]).shape == (1, 5, 6, 4)
