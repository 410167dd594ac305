"""CSTPP generator: parameter count, colour transform, resampling, sharing."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import models
from rawjax.models import cstpp

TINY = dict(base_channels=4, channel_ratio=2, stem_channels=8, embed_dim=16,
            depth=3, num_heads=2)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _shapes(model, shape, **kwargs):
  return jax.eval_shape(lambda k: model.init(k, jnp.zeros(shape), **kwargs),
                        jax.random.PRNGKey(0))


def test_parameter_count_matches_the_official_generator():
  # Spec 1.2.2's breakdown (from the official definitions), per generator.
  expected = {'conv1': 12544, 'stem_bn': 128, 'conv_1': 8768,
              'trans_patch_conv': 262400, 'trans_1': 788992,
              'conv_trans_2': 807088, 'conv_trans_3': 848224,
              'conv_trans_4': 841824, 'conv_trans_5': 988608,
              'conv_trans_6': 1029568}
  for kernel in ('cstpp14', 'cstpp14_code'):
    variables = _shapes(cstpp.CSTPPGenerator(kernel=kernel), (1, 64, 64, 4),
                        train=False)
    params = variables['params']
    assert _count(params) == 5_668_840
    assert {k: _count(v) for k, v in params['backbone'].items()} == expected
    assert _count(params['trans_norm']) == 512
    assert _count(params['head']) == 80_184
    assert params['head']['fc2']['kernel'].shape == (256, 56)
    assert 'bias' not in params['backbone']['trans_1']['attn']['qkv']
  three = _shapes(cstpp.CSTPPGenerator(in_channels=3), (1, 32, 32, 3),
                  train=False)['params']
  assert three['head']['fc2']['kernel'].shape == (256, 30)  # 3 x 10 terms
  assert models.get_model('cstpp', **TINY).embed_dim == 16


def _phi_reference(x, kernel):
  r, gr, gb, b = np.moveaxis(x.astype(np.float64), -1, 0)
  pair = r * b if kernel == 'cstpp14' else gr * b  # the official bug
  return np.stack([r * r, gr * gr, gb * gb, b * b, r * gr, gr * gb, gb * b,
                   r * gb, gr * b, pair, r, gr, gb, b], -1)


@pytest.mark.parametrize('kernel', ['cstpp14', 'cstpp14_code'])
def test_residual_polynomial_matches_numpy(variant, kernel):
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (2, 5, 7, 4)).astype(np.float32)
  w = rng.normal(0, 0.3, (2, 5, 7, 4, 14)).astype(np.float32)
  out = variant(functools.partial(cstpp.apply_residual_polynomial,
                                  kernel=kernel))(x, w)
  phi = _phi_reference(x, kernel)
  expected = np.empty(x.shape)
  for c in range(4):  # y_c = x_c + sum_k phi_k W_ck, per pixel
    expected[..., c] = x[..., c] + np.sum(phi * w[..., c, :], axis=-1)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r'end in \(C, T\) = \(4, 14\)'):
    cstpp.apply_residual_polynomial(x, w[..., :10], kernel=kernel)


def _upsample_reference(x, factor):
  """float64 loop of PyTorch's bilinear align_corners=True."""
  h, w, c = x.shape
  ho, wo = h * factor, w * factor
  out = np.zeros((ho, wo, c))
  for i in range(ho):
    sy = i * (h - 1) / (ho - 1) if ho > 1 else 0.0
    y0 = min(int(np.floor(sy)), h - 1)
    y1, fy = min(y0 + 1, h - 1), sy - y0
    for j in range(wo):
      sx = j * (w - 1) / (wo - 1) if wo > 1 else 0.0
      x0 = min(int(np.floor(sx)), w - 1)
      x1, fx = min(x0 + 1, w - 1), sx - x0
      out[i, j] = ((1 - fy) * ((1 - fx) * x[y0, x0] + fx * x[y0, x1]) +
                   fy * ((1 - fx) * x[y1, x0] + fx * x[y1, x1]))
  return out


@pytest.mark.parametrize('shape,factor', [((3, 4, 2), 5), ((1, 3, 1), 4),
                                          ((2, 2, 3), 16)])
def test_upsample_align_corners_matches_loop(variant, shape, factor):
  x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
  out = variant(functools.partial(cstpp.upsample_align_corners,
                                  factor=factor))(x)
  np.testing.assert_allclose(out, _upsample_reference(x, factor), atol=1e-5)
  # Corners coincide (not the half-pixel centres of jax.image.resize).
  np.testing.assert_allclose(out[-1, -1], x[-1, -1], atol=1e-6)
  if shape[0] > 1:
    resized = jax.image.resize(x, (shape[0] * factor, shape[1] * factor,
                                   shape[2]), 'linear')
    assert np.abs(np.asarray(resized) - out).max() > 1e-3


def test_bilinear_downsample_is_torch_semantics(variant):
  x = np.random.default_rng(2).uniform(size=(1, 16, 8, 3)).astype(np.float32)
  for m in (2, 4, 8):
    out = variant(functools.partial(cstpp.bilinear_downsample, factor=m))(x)
    # align_corners=False, scale 1/M: source (i + 0.5) M - 0.5, i.e. the
    # mean of the two central rows/columns of every M-block.
    c = m // 2
    blocks = x.reshape(1, 16 // m, m, 8 // m, m, 3)
    expected = blocks[:, :, c - 1:c + 1, :, c - 1:c + 1].mean(axis=(2, 4))
    np.testing.assert_allclose(out, expected, atol=1e-6)
  with pytest.raises(ValueError, match='not divisible by 3'):
    cstpp.bilinear_downsample(x, 3)


@pytest.fixture(scope='module')
def tiny():
  model = cstpp.CSTPPGenerator(**TINY)
  variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, 32, 32, 4)),
                                           train=False))(jax.random.PRNGKey(0))
  return model, variables


def test_generator_is_a_residual_per_token_polynomial(tiny):
  model, variables = tiny
  rng = np.random.default_rng(3)
  x = rng.uniform(0, 1, (2, 40, 24, 4)).astype(np.float32)  # padded to 64
  coefficients = rng.normal(0, 0.1, (4, 14)).astype(np.float32)
  # A head that outputs the same coefficients for every token: the
  # upsampled maps are constant, so y = x + phi(x) W^T at every pixel.
  params = flax.core.unfreeze(variables['params'])
  params['head']['fc2']['kernel'] = jnp.zeros_like(
      params['head']['fc2']['kernel'])
  params['head']['fc2']['bias'] = jnp.asarray(coefficients.reshape(-1))
  out = jax.jit(model.apply)({'params': params,
                              'batch_stats': variables['batch_stats']}, x)
  expected = x + np.einsum('bhwk,ck->bhwc', _phi_reference(x, 'cstpp14'),
                           coefficients)
  assert out.shape == x.shape
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  # The same parameters run at any downsampling factor M (Table 4).
  coarse = model.clone(downsample=2).apply(
      {'params': params, 'batch_stats': variables['batch_stats']}, x)
  np.testing.assert_allclose(coarse, expected, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match=r'expected \(B, H, W, 4\)'):
    model.apply(variables, x[..., :3])


def test_global_transform_applies_the_mean_token_set(tiny):
  model, variables = tiny
  uniform = model.clone(transform='global')
  rng = np.random.default_rng(4)
  x = rng.uniform(0, 1, (2, 64, 64, 4)).astype(np.float32)
  # The head's output per token, from the patch-wise model's intermediates.
  _, state = model.apply(variables, x, capture_intermediates=True)
  tokens = state['intermediates']['head']['__call__'][0]
  mean_set = np.asarray(tokens).mean(axis=(1, 2)).reshape(2, 4, 14)
  expected = x + np.einsum('bhwk,bck->bhwc', _phi_reference(x, 'cstpp14'),
                           mean_set)
  out = jax.jit(uniform.apply)(variables, x)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='transform must be one of'):
    model.clone(transform='pixel').apply(variables, x)


def test_sharing_modes_split_the_tree():
  model = cstpp.CSTPPGenerator(**TINY)
  params = _shapes(model, (1, 32, 32, 4), train=False)['params']
  flat = flax.traverse_util.flatten_dict(params)
  total = len(flat)
  bn = [p for p in flat if any('bn' in m for m in p[:-1])]
  ln = [p for p in flat if any(m.startswith('norm') or m in ('ln',
                                                             'trans_norm')
                               for m in p[:-1])]
  head = [p for p in flat if p[0] == 'head']
  for sharing, own in (('code', set(bn) | set(ln) | set(head)),
                       ('paper', set(bn)), ('none', set(flat))):
    split = cstpp.split_params(params, params, sharing=sharing)
    own_paths = set(flax.traverse_util.flatten_dict(split['a_to_b']))
    shared = set(flax.traverse_util.flatten_dict(split['shared'])) if (
        split['shared']) else set()
    assert own_paths == own, sharing
    assert shared.isdisjoint(own_paths) and len(shared) + len(own) == total
  with pytest.raises(ValueError, match='sharing must be one of'):
    cstpp.is_per_direction(('a', 'b'), sharing='all')


def test_shared_weights_are_one_array(tiny):
  _, variables = tiny
  params_ab = variables['params']
  params_ba = jax.tree.map(lambda x: x + 1.0, params_ab)  # another draw
  split = cstpp.split_params(params_ab, params_ba, sharing='code')
  kernel = ('backbone', 'conv1', 'kernel')
  flat_shared = flax.traverse_util.flatten_dict(split['shared'])
  assert kernel in flat_shared
  for direction in cstpp.DIRECTIONS:
    assert kernel not in flax.traverse_util.flatten_dict(split[direction])
  # Both directions read the very same shared array...
  ab = cstpp.merge_params(split, 'a_to_b')
  ba = cstpp.merge_params(split, 'b_to_a')
  assert ab['backbone']['conv1']['kernel'] is ba['backbone']['conv1']['kernel']
  # ...and two different BatchNorm / LayerNorm / head arrays.
  for path in (('backbone', 'stem_bn', 'scale'), ('trans_norm', 'scale'),
               ('head', 'fc2', 'kernel')):
    a = flax.traverse_util.flatten_dict(split['a_to_b'])[path]
    b = flax.traverse_util.flatten_dict(split['b_to_a'])[path]
    assert a is not b
    np.testing.assert_allclose(b, a + 1.0)


def test_discriminator_outputs():
  official = cstpp.GlobalDiscriminator()
  patch = cstpp.PatchDiscriminator()
  v = _shapes(official, (2, 64, 64, 4))
  out = jax.eval_shape(official.apply, v, jnp.zeros((2, 64, 64, 4)))
  assert out.shape == (2,)
  v = _shapes(patch, (1, 256, 256, 4))
  out = jax.eval_shape(patch.apply, v, jnp.zeros((1, 256, 256, 4)))
  assert out.shape == (1, 30, 30)  # the 70 x 70 PatchGAN's map
  # 64 -> 128 -> 256 -> 512 -> 1 convolutions of 4 x 4, with biases.
  assert _count(v['params']) == (16 * 4 * 64 + 64 + 16 * 64 * 128 + 128 +
                                 16 * 128 * 256 + 256 + 16 * 256 * 512 +
                                 512 + 16 * 512 + 1)
  with pytest.raises(ValueError, match='>= 32'):
    official.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 4)))
