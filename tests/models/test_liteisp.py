"""LiteISPNet, GCM, VGG-19, the PatchGAN, tiling, their losses and converters.

The losses: `rawjax.methods.liteisp.objective` and the LSGAN terms of
`rawjax.losses`.

References: the layer counts of the spec (9,039,623 / 46,243 / 2,765,633
parameters, counted with jax.eval_shape), an explicit filter-bank formula for
the Haar DWT, scipy for the zero-padded SSIM, and an independent PyTorch
implementation (tests/torch_reference/liteisp_torch.py, skipped without
torch) for pixel shuffle, the ×0.5 resize and whole-network equivalence
after conversion.
"""

import functools
import pathlib
import sys

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from scipy import ndimage

from rawjax import convert, losses, models
from rawjax.methods.liteisp import objective
from rawjax.isp import cfa
from rawjax.models import liteisp, tiling, vgg
from rawjax.data.datasets.zrr import coordinate_map

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from torch_reference import state_dicts  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


def _count(model, *shapes, **kwargs):
  variables = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), *[jnp.zeros(s) for s in shapes], **kwargs))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(
      variables['params']))


def test_parameter_counts_match_the_reference():
  assert _count(models.get_model('liteisp'), (1, 224, 224, 4)) == 9_039_623
  assert _count(models.get_model('gcm'), (1, 448, 448, 3), (1, 448, 448, 3),
                (1, 448, 448, 2)) == 46_243
  assert _count(models.get_model('patchgan_liteisp'), (1, 448, 448, 3),
                train=False) == 2_765_633
  # torchvision vgg19().features, all 16 convolutions.
  assert _count(models.get_model('vgg19'), (1, 32, 32, 3)) == 20_024_384
  # The paper's Table A/5 variants: without coordinates, other RCAB counts.
  assert _count(models.GCM(coord=False), (1, 32, 32, 3),
                (1, 32, 32, 3)) == 46_243 - 2 * 32 * 49 - 2 * 64


def _dwt_reference(x):
  """Direct filter bank: out[4c + k] = sum_ab f_k[a, b] x[2i + a, 2j + b, c]."""
  f = liteisp.haar_filters(1)[:, 0]  # (4, 2, 2)
  n, h, w, c = x.shape
  out = np.zeros((n, h // 2, w // 2, 4 * c), np.float64)
  for k in range(4):
    for a in range(2):
      for b in range(2):
        out[..., k::4] += f[k, a, b] * x[:, a::2, b::2, :]
  return out


def test_dwt_matches_the_filter_bank_and_inverts_exactly(variant):
  rng = np.random.default_rng(0)
  # Integers: every sum and halving is exact in float32, so the round trip
  # must be bit-exact.
  x = rng.integers(-64, 64, (2, 8, 6, 3)).astype(np.float32)
  bands = variant(liteisp.haar_dwt)(x)
  np.testing.assert_array_equal(bands, _dwt_reference(x))
  np.testing.assert_array_equal(variant(liteisp.haar_iwt)(bands), x)
  with pytest.raises(ValueError, match='even'):
    liteisp.haar_dwt(np.zeros((1, 5, 4, 2), np.float32))


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(hnp.arrays(np.float32, (1, 4, 6, 2),
                             elements=st.floats(-1, 1, width=32)))
def test_dwt_round_trip_property(x):
  np.testing.assert_allclose(liteisp.haar_iwt(liteisp.haar_dwt(x)), x,
                             atol=1e-6)
  # Orthonormal: energy is preserved.
  np.testing.assert_allclose(np.sum(np.square(liteisp.haar_dwt(x))),
                             np.sum(np.square(x)), rtol=1e-5, atol=1e-6)


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(hnp.arrays(np.float32, (1, 3, 2, 8),
                             elements=st.floats(-1, 1, width=32)))
def test_pixel_shuffle_round_trip_property(x):
  np.testing.assert_array_equal(
      liteisp.pixel_unshuffle(liteisp.pixel_shuffle(x)), x)


def test_pixel_shuffle_matches_pytorch(variant):
  torch = pytest.importorskip('torch')
  x = np.arange(2 * 3 * 5 * 12, dtype=np.float32).reshape(2, 3, 5, 12)
  expected = torch.nn.PixelShuffle(2)(torch.from_numpy(
      x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_array_equal(variant(liteisp.pixel_shuffle)(x), expected)
  # Not the TensorFlow depth_to_space order (which `layers` implements).
  assert not np.array_equal(expected, models.layers.depth_to_space(x))


def test_half_scale_matches_torch_bilinear():
  torch = pytest.importorskip('torch')
  x = np.random.default_rng(1).uniform(0, 1, (2, 8, 6, 3)).astype(np.float32)
  expected = torch.nn.functional.interpolate(
      torch.from_numpy(x.transpose(0, 3, 1, 2)), scale_factor=0.5,
      mode='bilinear').numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(objective.half_scale(x), expected, atol=1e-6)


# --- losses --------------------------------------------------------------------------


def test_ssim_loss_matches_scipy_zero_padding(variant):
  rng = np.random.default_rng(2)
  x = rng.uniform(0, 1, (2, 16, 12, 3))
  y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
  t = np.arange(11) - 5
  g = np.exp(-t**2 / (2 * 1.5**2))
  window = np.outer(g, g) / np.outer(g, g).sum()

  def blur(z):
    return np.stack([[ndimage.correlate(z[n, ..., c], window, mode='constant')
                      for c in range(z.shape[-1])] for n in range(len(z))]
                    ).transpose(0, 2, 3, 1)
  mx, my = blur(x), blur(y)
  vx, vy, vxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
  c1, c2 = 0.01**2, 0.03**2
  expected = np.mean((2 * mx * my + c1) * (2 * vxy + c2) /
                     ((mx**2 + my**2 + c1) * (vx + vy + c2)))
  x, y = x.astype(np.float32), y.astype(np.float32)
  got = variant(lambda a, b: objective.ssim_loss(prediction=a, target=b))(x, y)
  np.testing.assert_allclose(got, 1.0 - expected, atol=2e-5)
  grad = jax.jit(jax.grad(lambda p: objective.ssim_loss(prediction=p,
                                                     target=y)))(x)
  assert np.all(np.isfinite(grad))


def test_masked_and_adversarial_losses():
  rng = np.random.default_rng(3)
  p, t = rng.uniform(0, 1, (2, 4, 4, 3)), rng.uniform(0, 1, (2, 4, 4, 3))
  m = (rng.uniform(size=(2, 4, 4, 1)) > 0.3).astype(np.float64)
  # Masked zeros count in the mean (torch L1Loss over all elements).
  np.testing.assert_allclose(
      objective.masked_l1_loss(prediction=p, target=t * m, mask=m),
      np.abs(p * m - t * m).mean(), rtol=1e-6)
  d_fake, d_real = rng.normal(size=(2, 3, 3, 1)), rng.normal(size=(2, 3, 3, 1))
  np.testing.assert_allclose(
      losses.lsgan_discriminator_loss(real_logits=d_real, fake_logits=d_fake),
      0.5 * (np.mean((d_real - 1)**2) + np.mean(d_fake**2)), rtol=1e-6)
  np.testing.assert_allclose(
      losses.lsgan_generator_loss(fake_logits=d_fake),
      np.mean((d_fake - 1)**2), rtol=1e-6)
  total = objective.liteisp_total_loss(gcm=1.0, l1=2.0, vgg=3.0, ssim=0.5,
                                    adversarial=np.nan)
  np.testing.assert_allclose(total, 1 + 2 + 3 + 0.15 * 0.5, rtol=1e-6)
  with pytest.raises(ValueError, match='shapes differ'):
    objective.masked_l1_loss(prediction=p, target=t[:1])
  # Eq. 7's terms on m * y_hat against the (masked) y_w.
  y_w = t * m
  terms = objective.masked_terms(output=p, target=y_w, mask=m, ssim=False)
  assert set(terms) == {'l1'}
  np.testing.assert_allclose(terms['l1'], np.abs(p * m - y_w).mean(),
                             rtol=1e-6)
  big = rng.uniform(0, 1, (1, 16, 16, 3))
  ones = np.ones((1, 16, 16, 1))
  terms = objective.masked_terms(output=big, target=big * 0.5, mask=ones)
  np.testing.assert_allclose(
      terms['ssim'], objective.ssim_loss(prediction=big, target=big * 0.5),
      rtol=1e-6)


def test_vgg_perceptual_loss_is_zero_on_equal_images_and_differentiable():
  net = vgg.VGG19(layer='relu1_2')
  params = jax.jit(net.init)(jax.random.PRNGKey(0),
                             jnp.zeros((1, 8, 8, 3)))['params']
  x = jnp.asarray(np.random.default_rng(4).uniform(0, 1, (1, 8, 8, 3)),
                  jnp.float32)
  loss = functools.partial(objective.vgg_perceptual_loss, vgg_params=params,
                           layer='relu1_2')
  assert float(jax.jit(lambda a: loss(prediction=a, target=a))(x)) == 0.0
  grad = jax.jit(jax.grad(lambda p: loss(prediction=p, target=x * 0.5)))(x)
  assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
  with pytest.raises(ValueError, match='unknown layer'):
    jax.eval_shape(lambda: vgg.VGG19(layer='relu6_1').init(
        jax.random.PRNGKey(0), x))


# --- models ----------------------------------------------------------------------------


SMALL = dict(channels=(8, 16, 16), num_blocks=1, reduction=2)


@pytest.fixture(scope='module')
def small_isp():
  model = liteisp.LiteISPNet(**SMALL)
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               jnp.zeros((1, 16, 16, 4)))['params']
  return model, params, jax.jit(lambda p, r, c: model.apply({'params': p}, r,
                                                             c))


def test_liteisp_shapes_default_coord_and_bad_input(small_isp):
  model, params, apply = small_isp
  raw = np.random.default_rng(5).uniform(0, 1, (2, 16, 16, 4)).astype(
      np.float32)
  out = apply(params, raw, coordinate_map(16, 16))
  assert out.shape == (2, 32, 32, 3)
  # Without coord the patch's own [-1, 1] grid is used; the gamma at 0 is
  # guarded, so the gradient there is finite.
  no_coord, grad = jax.jit(lambda p, r: (
      model.apply({'params': p}, r),
      jax.grad(lambda q: jnp.mean(model.apply({'params': p}, q)))(0 * r)))(
          params, raw)
  np.testing.assert_allclose(no_coord, out, atol=1e-5)
  assert np.all(np.isfinite(grad))
  with pytest.raises(ValueError, match='multiples of 8'):
    jax.eval_shape(lambda r: model.apply({'params': params}, r), raw[:, :12])
  with pytest.raises(ValueError, match=r'\(N, h, w, 4\)'):
    jax.eval_shape(lambda r: model.apply({'params': params}, r),
                   raw[..., :3])


def test_input_gamma_is_the_reference_pow_with_finite_gradients(variant):
  # The reference applies torch.pow(raw, 1/2.2): 0 at 0, and black-level
  # clipping of ZRR raw gives exact zeros.
  x = np.asarray([0.0, 1e-30, 1e-8, 1e-3, 0.0625, 0.5, 1.0, 1.3], np.float32)
  got = np.asarray(variant(liteisp.input_gamma)(x))
  assert got[0] == 0.0
  # exp(gamma log x) in float32: within a few ulp of the exact power.
  np.testing.assert_allclose(got[1:], x[1:].astype(np.float64) ** (1 / 2.2),
                             rtol=1e-6)
  np.testing.assert_array_equal(
      np.asarray(variant(liteisp.input_gamma)(np.float32([-0.1]))), [0.0])
  grad = variant(jax.vmap(jax.grad(liteisp.input_gamma)))(
      np.float32([0.0, 1.0, 0.25]))
  assert np.all(np.isfinite(grad)) and grad[0] == 0.0
  np.testing.assert_allclose(grad[1:], [1 / 2.2, 0.25 ** (1 / 2.2 - 1) / 2.2],
                             rtol=1e-6)


def _torch_state(module):
  return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_liteisp_equals_the_pytorch_reference(small_isp):
  torch = pytest.importorskip('torch')
  from torch_reference import liteisp_torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  net = liteisp_torch.LiteISPNetTorch(ch=SMALL['channels'],
                                      nb=SMALL['num_blocks'],
                                      reduction=SMALL['reduction']).eval()
  # Non-trivial biases everywhere (PyTorch's default init already is).
  params = convert.convert_liteisp(_torch_state(net), **SMALL)
  raw = np.random.default_rng(6).uniform(0, 1, (2, 16, 16, 4)).astype(
      np.float32)
  # Exact zeros, as black-level clipping leaves: the gamma must give 0 there.
  raw[raw < 0.2] = 0.0
  coord = coordinate_map(16, 16)
  with torch.no_grad():
    pynet = np.asarray(cfa.to_pynet_order(raw)).transpose(0, 3, 1, 2)
    expected = net(torch.from_numpy(np.ascontiguousarray(pynet)),
                   torch.from_numpy(np.broadcast_to(
                       coord.transpose(2, 0, 1), (2, 2, 16, 16)).copy()))
  expected = expected.numpy().transpose(0, 2, 3, 1)
  _, _, apply = small_isp
  got = apply(params, raw, coord)
  np.testing.assert_allclose(got, expected, atol=1e-4)
  assert np.abs(expected).max() > 0.05
  # input_order='pynet' keeps the reference's channel order.
  pynet_params = convert.convert_liteisp(_torch_state(net), **SMALL,
                                         input_order='pynet')
  np.testing.assert_allclose(
      apply(pynet_params, np.asarray(cfa.to_pynet_order(raw)), coord),
      expected, atol=1e-4)


def test_gcm_equals_the_pytorch_reference():
  torch = pytest.importorskip('torch')
  from torch_reference import liteisp_torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(1)
  net = liteisp_torch.GCMTorch().eval()
  params = convert.convert_gcm(_torch_state(net))
  rng = np.random.default_rng(7)
  demosaic = rng.uniform(0, 1, (2, 20, 24, 3)).astype(np.float32)
  dslr = rng.uniform(0, 1, (2, 20, 24, 3)).astype(np.float32)
  coord = np.broadcast_to(coordinate_map(20, 24), (2, 20, 24, 2))
  t = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
  with torch.no_grad():
    expected = net(t(demosaic), t(dslr), t(coord)).numpy().transpose(0, 2, 3,
                                                                    1)
  got = jax.jit(lambda p, a, b, c: models.GCM().apply({'params': p}, a, b, c))(
      params, demosaic, dslr, coord)
  np.testing.assert_allclose(got, expected, atol=1e-4)


def test_discriminator_patch_size_and_batch_stats():
  disc = liteisp.PatchDiscriminator(features=4)
  x = jnp.asarray(np.random.default_rng(8).uniform(0, 1, (2, 64, 64, 3)),
                  jnp.float32)
  variables = jax.jit(lambda k: disc.init(k, x, train=False))(
      jax.random.PRNGKey(0))
  logits, updates = jax.jit(lambda v: disc.apply(
      v, x, train=True, mutable=['batch_stats']))(variables)
  # 64 -> 32 -> 16 -> 8 -> 7 -> 6 (k4, p1; strides 2, 2, 2, 1, 1).
  assert logits.shape == (2, 6, 6, 1)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                       updates['batch_stats'], variables['batch_stats'])
  assert all(v > 0 for v in jax.tree.leaves(moved))


# --- conversion -------------------------------------------------------------------------


def _fake_liteisp_state(channels=(8, 16, 16), num_blocks=1, reduction=2,
                        with_wavelets=True):
  """A random state dict with the reference's keys, built without torch."""
  model = liteisp.LiteISPNet(channels=channels, num_blocks=num_blocks,
                             reduction=reduction)
  template = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 4))))['params']
  state = state_dicts.random_state_dict(template, seed=9)
  if with_wavelets:
    c1, c2, _ = channels
    for key, c in (('down1.3.weight', c1), ('down2.2.weight', c1),
                   ('down3.2.weight', c2), ('up3.0.weight', c2),
                   ('up2.0.weight', c1), ('up1.0.weight', c1)):
      state[key] = liteisp.haar_filters(c)
  return state


def test_converter_rejects_missing_misshapen_and_unexpected_keys(tmp_path):
  state = _fake_liteisp_state()
  assert 'down1.1.rg.0.ca.conv_du.2.weight' in state and 'head.weight' in state
  params = convert.convert_liteisp(state, channels=(8, 16, 16), num_blocks=1,
                                   reduction=2)
  np.testing.assert_array_equal(params['tail_2']['bias'], state['tail.2.bias'])
  broken = dict(state)
  del broken['middle.1.rg.0.res.2.bias']
  broken['tail.0.weight'] = broken['tail.0.weight'][:, :3]
  broken['pre_coord.fc.0.weight'] = np.zeros((256, 10816), np.float32)
  with pytest.raises(ValueError) as error:
    convert.convert_liteisp(broken, channels=(8, 16, 16), num_blocks=1,
                            reduction=2)
  message = str(error.value)
  assert 'missing keys (1): middle.1.rg.0.res.2.bias' in message
  assert 'tail.0.weight: expected (32, 8, 3, 3), found (32, 3, 3, 3)' in message
  assert 'unexpected keys (1): pre_coord.fc.0.weight' in message
  # Another width (the full model) is a shape mismatch, not a partial load.
  with pytest.raises(ValueError, match='head.weight: expected'):
    convert.convert_liteisp(state)
  wrong_haar = dict(state, **{'down2.2.weight': -liteisp.haar_filters(8)})
  with pytest.raises(ValueError, match='Haar'):
    convert.convert_liteisp(wrong_haar, channels=(8, 16, 16), num_blocks=1,
                            reduction=2)
  # The CLI route: an .npz of the state dict (no torch) -> Flax .npz.
  np.savez(tmp_path / 'sd.npz', **{f'module.{k}': v for k, v in
                                   _fake_liteisp_state(
                                       (64, 128, 128), 4, 16).items()})
  out = convert.main(['liteisp', str(tmp_path / 'sd.npz'),
                      str(tmp_path / 'flax.npz')])
  loaded = convert.load_params(out)
  assert sum(int(np.size(x)) for x in jax.tree.leaves(loaded)) == 9_039_623


def test_vgg19_conversion_matches_a_torch_vgg():
  torch = pytest.importorskip('torch')
  torch.manual_seed(2)
  modules, cin = [], 3
  for v in vgg.VGG19_CONFIG:
    if v == 'M':
      modules.append(torch.nn.MaxPool2d(2))
    else:
      modules += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU()]
      cin = v
  features = torch.nn.Sequential(*modules)
  state = {f'features.{k}': v.numpy() for k, v in
           features.state_dict().items()}
  state['classifier.0.weight'] = np.zeros((4096, 25088), np.float32)
  params = convert.convert_vgg19(state, layer='relu2_2')
  x = np.random.default_rng(10).uniform(0, 1, (1, 16, 16, 3)).astype(
      np.float32)
  mean, std = np.array(vgg.IMAGENET_MEAN), np.array(vgg.IMAGENET_STD)
  with torch.no_grad():
    expected = features[:9](torch.from_numpy(
        ((x - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)))
  got = vgg.VGG19(layer='relu2_2').apply({'params': params}, x)
  np.testing.assert_allclose(got, expected.numpy().transpose(0, 2, 3, 1),
                             atol=1e-4)
  with pytest.raises(ValueError, match='missing keys'):
    convert.convert_vgg19({k: v for k, v in state.items()
                           if k != 'features.5.weight'}, layer='relu2_2')


# --- tiling ----------------------------------------------------------------------------


def test_tiled_apply_blends_to_the_whole_frame_result():
  rng = np.random.default_rng(11)
  image = rng.uniform(0, 1, (37, 50, 2)).astype(np.float32)
  # A pointwise function with a 2x output: tiling must be exact.
  pointwise = lambda x: np.repeat(np.repeat(x * 2.0, 2, 1), 2, 2)  # noqa: E731
  out = tiling.tiled_apply(pointwise, [image], tile=16, overlap=4, scale=2,
                           batch_tiles=3)
  np.testing.assert_allclose(out, pointwise(image[None])[0], rtol=1e-6)
  # A jitted function returns before its result is ready; the batch in
  # flight is blended after the next one is dispatched, to the same result.
  jitted = jax.jit(lambda x: jnp.repeat(jnp.repeat(x * 2.0, 2, 1), 2, 2))
  np.testing.assert_array_equal(
      tiling.tiled_apply(jitted, [image], tile=16, overlap=4, scale=2,
                         batch_tiles=3), out)
  # A 5x5 box filter sees tile borders; with overlap >> radius the blended
  # result differs from the whole-frame one only slightly, and only near
  # the tile seams.
  box = lambda x: ndimage.uniform_filter(x, size=(1, 5, 5, 1), mode='reflect')  # noqa: E731
  out = tiling.tiled_apply(box, [image], tile=24, overlap=12)
  whole = box(image[None])[0]
  assert np.abs(out - whole).mean() < 0.01
  np.testing.assert_allclose(out[:10, :10], whole[:10, :10], atol=1e-6)
  # Inputs are cut at the same places.
  out = tiling.tiled_apply(lambda a, b: a + b, [image, 2 * image], tile=16,
                           overlap=8)
  np.testing.assert_allclose(out, 3 * image, rtol=1e-6)
  assert tiling.tile_starts(96, 32, 8, multiple=8) == [0, 24, 48, 64]
  assert tiling.tile_starts(100, 32, 8, multiple=8) == [0, 24, 48, 68]
  with pytest.raises(ValueError, match='share H and W'):
    tiling.tiled_apply(pointwise, [image, image[:5]], tile=8, overlap=2)
