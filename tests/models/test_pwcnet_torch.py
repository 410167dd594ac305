"""PWC-Net against an independent PyTorch implementation of sniklaus' Network.

tests/torch_reference/pwcnet_torch.py is written from sniklaus' pytorch-pwc
`run.py` (pure-torch correlation, the original `backwarp` with grid_sample,
align_corners=False). Random weights (Kaiming-normal, every decoder's flow
layer rescaled so each level warps by about 1.5 px of its own grid, so the
warps and their validity masks are exercised), converted with
`rawjax.convert.convert_pwcnet`; both networks run on the same random images.
Skipped without torch.
"""

import pathlib
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

from rawjax import convert
from rawjax.isp.warp import backward_warp
from rawjax.models import pwcnet

torch = pytest.importorskip('torch')
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from torch_reference import pwcnet_torch  # noqa: E402  pylint: disable=g-import-not-at-top

# The images are 56 x 120: `estimate` resizes them to 64 x 128 (level 6 is
# 1 x 2, level 2 16 x 32) and the quarter-size flow back to 56 x 120.
H, W = 56, 120
H64, W64 = 64, 128
# Flow layers' target std per level (flow / 20 units): about 1.5 px of
# displacement at the next finer level (x 20 / 2^(l-1)); the level-2 output
# about 6 px at full resolution.
TARGET_STD = {6: 2.4, 5: 1.2, 4: 0.6, 3: 0.3, 2: 0.3}
DECODERS = {6: 'netSix', 5: 'netFiv', 4: 'netFou', 3: 'netThr', 2: 'netTwo'}


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(
      0, 3, 1, 2)))


def _nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _random_network(first, second):
  """Kaiming-normal weights; each decoder's flow conv scaled to TARGET_STD.

  first, second: the (N, 3, H64, W64) network inputs the scaling is tuned on.
  """
  torch.manual_seed(0)
  net = pwcnet_torch.PWCNetTorch().eval()
  with torch.no_grad():
    for module in net.modules():
      if isinstance(module, torch.nn.Conv2d):
        fan_in = module.weight[0].numel()
      elif isinstance(module, torch.nn.ConvTranspose2d):
        fan_in = module.weight.shape[0] * 4  # 2 x 2 taps per output (s2)
      else:
        continue
      module.weight.normal_(0.0, (2.0 / 1.01 / fan_in) ** 0.5)
    # Coarse to fine (a level depends on the coarser ones only); scaling the
    # flow conv's weight and bias scales its output exactly.
    f1, f2 = net.netExtractor(first), net.netExtractor(second)
    estimate = None
    for index, level in enumerate((6, 5, 4, 3, 2)):
      decoder = getattr(net, DECODERS[level])
      estimate = decoder(f1[-1 - index], f2[-1 - index], estimate)
      gain = TARGET_STD[level] / float(estimate['tenFlow'].std())
      decoder.netSix[0].weight.mul_(gain)
      decoder.netSix[0].bias.mul_(gain)
      estimate['tenFlow'] = estimate['tenFlow'] * gain
  return net


@pytest.fixture(scope='module')
def pair():
  rng = np.random.default_rng(0)
  first = rng.uniform(0, 1, (1, H, W, 3)).astype(np.float32)
  # The second image: the first moved by a few pixels plus noise, so the
  # correlations are not those of two unrelated noise images.
  second = np.roll(first, (3, -5), axis=(1, 2))
  second = np.clip(second + rng.normal(0, 0.1, second.shape), 0,
                   1).astype(np.float32)
  return first, second


@pytest.fixture(scope='module')
def networks(pair):
  resized = [torch.nn.functional.interpolate(
      _nchw(x), size=(H64, W64), mode='bilinear', align_corners=False)
             for x in pair]
  net = _random_network(*resized)
  state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
  return net, convert.convert_pwcnet(state)


def test_cost_volume_matches_torch_correlation():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(2, 7, 11, 6)).astype(np.float32)
  b = rng.normal(size=(2, 7, 11, 6)).astype(np.float32)
  got = np.asarray(pwcnet.cost_volume(a, b))
  want = _nhwc(pwcnet_torch.correlation(_nchw(a), _nchw(b)))
  assert got.shape == want.shape == (2, 7, 11, 81)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_backward_warp_matches_sniklaus_backwarp():
  rng = np.random.default_rng(2)
  image = rng.normal(size=(2, 9, 13, 5)).astype(np.float32)
  flow = rng.normal(0, 2.5, size=(2, 9, 13, 2)).astype(np.float32)
  got, mask = backward_warp(image, flow, reference_scaling=True)
  want = _nhwc(pwcnet_torch.backwarp(_nchw(image), _nchw(flow)))
  valid = float(np.mean(mask))
  assert 0.1 < valid < 0.9  # both masked and unmasked pixels are compared
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_conv_transpose_matches_torch():
  torch.manual_seed(3)
  layer = torch.nn.ConvTranspose2d(7, 2, 4, stride=2, padding=1)
  x = np.random.default_rng(3).normal(size=(1, 5, 6, 7)).astype(np.float32)
  params = {'kernel': layer.weight.detach().numpy().transpose(2, 3, 0, 1),
            'bias': layer.bias.detach().numpy()}
  got = pwcnet.ConvTranspose4x4(2).apply({'params': params}, x)
  with torch.no_grad():
    want = _nhwc(layer(_nchw(x)))
  assert got.shape == (1, 10, 12, 2)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def _estimate_recording(params, first, second):
  """pwcnet.estimate, also returning what its network saw and produced."""
  seen = {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == '__call__':
      if isinstance(context.module, pwcnet.Decoder):
        seen[f'level{context.module.level}'] = out[0]
      elif isinstance(context.module, pwcnet.PWCNet):
        seen['inputs'] = args
        seen['output'] = out
    return out

  with nn.intercept_methods(record):
    flow = pwcnet.estimate(params, first, second)
  return flow, seen


def test_pwcnet_and_estimate_match_the_pytorch_reference(networks, pair):
  net, params = networks
  first, second = pair
  seen_torch = {}

  def network(a, b):
    out, levels = net(a, b, return_levels=True)
    seen_torch.update(inputs=(a, b), output=out, levels=levels)
    return out

  with torch.no_grad():
    want = _nhwc(pwcnet_torch.estimate(network, _nchw(first), _nchw(second)))
  got, seen = jax.jit(_estimate_recording)(params, first, second)
  got = np.asarray(got)
  assert got.shape == want.shape == (1, H, W, 2)

  # The multiple-of-64 resize of the inputs.
  for mine, ref in zip(seen['inputs'], seen_torch['inputs']):
    assert mine.shape == (1, H64, W64, 3)
    np.testing.assert_allclose(np.asarray(mine), _nhwc(ref), atol=1e-6)
  # Every decoder's flow (in pixels: x 20) and the network output.
  for (level, _), ref in zip(DECODERS.items(), seen_torch['levels']):
    mine = np.asarray(seen[f'level{level}']) * 20
    flow = _nhwc(ref['flow']) * 20
    diff = float(np.abs(mine - flow).max())
    kept = ('no warp' if level == 6 else
            f'backwarp mask kept {ref["valid"]:.0%} of the pixels')
    print(f'level {level}: max |flow| {np.abs(flow).max():6.2f} px, max diff '
          f'{diff:.1e} px, {kept}')
    assert diff <= 1e-3
  # The warps at levels 5..2 are neither trivial nor masked out entirely.
  assert all(0.2 < ref['valid'] < 0.9 for ref in seen_torch['levels'][1:])
  output = np.asarray(seen['output']) * 20
  ref = _nhwc(seen_torch['output']) * 20
  assert output.shape == ref.shape == (1, H64 // 4, W64 // 4, 2)
  diff = float(np.abs(output - ref).max())
  scale = float(np.abs(ref).max())
  print(f'network output (x20): max |flow| {scale:.2f} px, max diff '
        f'{diff:.1e} px')
  assert scale > 5.0  # a non-trivial flow
  assert diff <= 1e-3 and diff <= 1e-4 * scale
  # estimate: the flow resized to 56 x 120 and rescaled.
  diff = float(np.abs(got - want).max())
  scale = float(np.abs(want).max())
  print(f'estimate: max |flow| {scale:.2f} px, max diff {diff:.1e} px')
  assert scale > 5.0
  assert diff <= 1e-3 and diff <= 1e-4 * scale
