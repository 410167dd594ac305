"""The pyramidal flow estimator on a real image; PWC-Net shapes and converter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import convert
from rawjax import io as rawio
from rawjax import isp
from rawjax.isp.warp import sample_bilinear
from rawjax.models import flow as flow_lib
from rawjax.models import pwcnet

SIZE, MARGIN = 256, 16


@pytest.fixture(scope='module')
def clouds(shared_data):
  """sRGB crop (clouds) of the Blackmagic DNG, rendered with isp.process."""
  raw = rawio.read_raw(shared_data / 'raw' / 'blackmagic_pocket_cinema_4k_12bit.dng')
  mosaic = np.asarray(raw.mosaic)[384:384 + SIZE + 2 * MARGIN,
                                  784:784 + SIZE + 2 * MARGIN]
  return np.asarray(jax.jit(isp.process)(mosaic, raw.metadata()))


def _smooth_flow(size, amplitude, seed):
  rng = np.random.default_rng(seed)
  ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
  u = np.zeros((size, size))
  v = np.zeros((size, size))
  for _ in range(3):
    fx, fy = rng.uniform(0.5, 2.0, 2) / size * 2 * np.pi
    ph = rng.uniform(0, 2 * np.pi, 2)
    u += np.sin(fx * xs + fy * ys + ph[0])
    v += np.cos(fy * xs - fx * ys + ph[1])
  f = np.stack([u, v], -1)
  return f / np.linalg.norm(f, axis=-1).max() * amplitude


def test_pyramid_flow_recovers_smooth_flow(clouds):
  big = clouds[:SIZE + 2 * MARGIN, :SIZE + 2 * MARGIN]
  true = _smooth_flow(SIZE, 8.0, seed=0).astype(np.float32)
  ys, xs = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing='ij')
  # source(x) = target(x + f(x)): the target is the central crop
  source = np.asarray(sample_bilinear(jnp.asarray(big),
                                      jnp.asarray(xs + MARGIN + true[..., 0]),
                                      jnp.asarray(ys + MARGIN + true[..., 1])))
  target = big[MARGIN:MARGIN + SIZE, MARGIN:MARGIN + SIZE]
  est = jax.jit(flow_lib.estimate_flow)(source[None], target[None])
  assert est.shape == (1, SIZE, SIZE, 2)
  inside = ((xs + true[..., 0] >= 0) & (xs + true[..., 0] <= SIZE - 1) &
            (ys + true[..., 1] >= 0) & (ys + true[..., 1] <= SIZE - 1))
  epe = float(flow_lib.end_point_error(est, true[None], inside[None]))
  epe_all = float(flow_lib.end_point_error(est, true[None]))
  zero = float(flow_lib.end_point_error(jnp.zeros_like(est), true[None],
                                        inside[None]))
  print(f'pyramid flow EPE {epe:.3f} px (valid pixels), {epe_all:.3f} px '
        f'(all), zero-flow EPE {zero:.2f} px, max |f| 8 px')
  assert epe <= 0.3
  assert zero > 3.0


def test_estimate_flow_errors_name_the_fix():
  x = np.zeros((1, 64, 64, 3), np.float32)
  with pytest.raises(ValueError, match='params=.*convert_pwcnet'):
    flow_lib.estimate_flow(x, x, method='pwcnet')
  with pytest.raises(ValueError, match='method'):
    flow_lib.estimate_flow(x, x, method='farneback')
  with pytest.raises(ValueError, match='same shape'):
    flow_lib.estimate_flow(x, x[:, :32])


def test_cost_volume_against_numpy():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(1, 6, 7, 5)).astype(np.float32)
  b = rng.normal(size=(1, 6, 7, 5)).astype(np.float32)
  got = np.asarray(pwcnet.cost_volume(a, b))
  pad = np.pad(b, ((0, 0), (4, 4), (4, 4), (0, 0)))
  for dy in (-4, -1, 0, 3):
    for dx in (-2, 0, 4):
      ref = np.mean(a * pad[:, 4 + dy:10 + dy, 4 + dx:11 + dx], -1)
      np.testing.assert_allclose(got[..., (dy + 4) * 9 + dx + 4], ref,
                                 atol=1e-6)


# sniklaus pytorch-pwc `Network`, counted from the layer list of
# cszhilu1998/RAW-to-sRGB pwc/run.py (= sniklaus run.py): conv3x3 weights +
# biases of the extractor, the five decoders (with ConvTranspose 4x4 up-flow
# and up-feature layers below level 6) and the dilated refiner.
def _reference_parameter_count():
  conv = lambda i, o, k=3: i * o * k * k + o
  total = 0
  chans = [3, 16, 32, 64, 96, 128, 196]
  for i, o in zip(chans[:-1], chans[1:]):
    total += conv(i, o) + 2 * conv(o, o)
  current = {2: 81 + 32 + 4, 3: 81 + 64 + 4, 4: 81 + 96 + 4, 5: 81 + 128 + 4,
             6: 81}
  for level, c in current.items():
    for o in (128, 128, 96, 64, 32):
      total += conv(c, o)
      c += o
    total += conv(c, 2)
    if level < 6:
      prev = current[level + 1] + 448
      total += conv(2, 2, 4) + conv(prev, 2, 4)
  c = 81 + 32 + 4 + 448
  for o in (128, 128, 128, 96, 64, 32, 2):
    total += conv(c, o)
    c = o
  return total


@pytest.fixture(scope='module')
def pwc_shapes():
  x = jnp.zeros((1, 64, 64, 3))
  return jax.eval_shape(pwcnet.PWCNet().init, jax.random.key(0), x, x)


def test_pwcnet_shapes_and_parameter_count(pwc_shapes):
  count = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(pwc_shapes))
  reference = _reference_parameter_count()
  print(f'PWC-Net parameters {count:,} (reference layer list {reference:,})')
  assert reference == 9_374_274
  assert count == reference
  x = jnp.zeros((2, 128, 192, 3))
  out = jax.eval_shape(pwcnet.PWCNet().apply, pwc_shapes, x, x)
  assert out.shape == (2, 32, 48, 2)
  with pytest.raises(ValueError, match='multiples of 64'):
    jax.eval_shape(pwcnet.PWCNet().init, jax.random.key(0),
                   jnp.zeros((1, 60, 64, 3)), jnp.zeros((1, 60, 64, 3)))


def _fake_state_dict(shapes, prefix='module'):
  """A state dict with sniklaus' released key names and PyTorch layouts."""
  rng = np.random.default_rng(0)
  sd = {}
  for keypath, leaf in jax.tree_util.tree_leaves_with_path(shapes['params']):
    path = tuple(str(getattr(k, 'key', k)) for k in keypath)
    key = convert.flax_to_torch_key(path).replace('net', prefix)
    shape = leaf.shape
    if len(shape) == 4:
      kh, kw, i, o = shape
      shape = ((i, o, kh, kw) if path[-2] in ('netUpflow', 'netUpfeat')
               else (o, i, kh, kw))
    sd[key] = rng.normal(size=shape).astype(np.float32)
  return sd


def test_convert_pwcnet_layouts_and_rejections(pwc_shapes):
  sd = _fake_state_dict(pwc_shapes)
  assert 'moduleExtractor.moduleOne.0.weight' in sd
  params = convert.convert_pwcnet(sd)
  got = jax.tree.map(np.shape, params)
  want = jax.tree.map(lambda a: a.shape, pwc_shapes['params'])
  assert got == want
  np.testing.assert_array_equal(
      params['netTwo']['netUpfeat']['kernel'],
      sd['moduleTwo.moduleUpfeat.weight'].transpose(2, 3, 0, 1))
  np.testing.assert_array_equal(
      params['netRefiner']['netMain_4']['kernel'],
      sd['moduleRefiner.moduleMain.4.weight'].transpose(2, 3, 1, 0))
  bad = dict(sd)
  del bad['moduleSix.moduleOne.0.bias']
  bad['moduleExtra.weight'] = np.zeros(3)
  bad['moduleTwo.moduleSix.0.weight'] = np.zeros((2, 5, 3, 3))
  with pytest.raises(ValueError) as err:
    convert.convert_pwcnet(bad)
  message = str(err.value)
  assert 'netSix.netOne.0.bias' in message
  assert 'netExtra.weight' in message
  assert 'netTwo.netSix.0.weight' in message
