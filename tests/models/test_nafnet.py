"""NAFNet: PyTorch equivalence after conversion, parameter count, converter.

References: an independent PyTorch NAFNet (tests/torch_reference/
nafnet_torch.py, skipped without torch) for the whole-network output and the
parameter count of the official NAFNet-SIDD-width32 (29,159,715, counted on
the Flax side with jax.eval_shape).
"""

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import convert, models
from rawjax.models import layers, nafnet
from rawjax.train.config import load_config_module

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from torch_reference import state_dicts  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'configs'
SIDD32 = nafnet.OFFICIAL_CONFIGS['sidd-width32']
SIDD32_COUNT = 29_159_715
SMALL = dict(width=8, middle_blk_num=1, enc_blk_nums=(1, 1),
             dec_blk_nums=(1, 1))


def _count(model, shape=(1, 16, 16, 3)):
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                jnp.zeros(shape)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(
      variables['params']))


def test_parameter_count_sidd_width32():
  assert SIDD32 == dict(width=32, middle_blk_num=12, enc_blk_nums=(2, 2, 4, 8),
                        dec_blk_nums=(2, 2, 2, 2))
  assert _count(models.get_model('nafnet', img_channel=3, **SIDD32)) == (
      SIDD32_COUNT)


def test_parameter_count_equals_the_pytorch_reference():
  pytest.importorskip('torch')
  from torch_reference import nafnet_torch  # pylint: disable=g-import-not-at-top
  net = nafnet_torch.NAFNetTorch(img_channel=3, **SIDD32)
  assert sum(p.numel() for p in net.parameters()) == SIDD32_COUNT


def _torch_net(torch, seed=0):
  from torch_reference import nafnet_torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  net = nafnet_torch.NAFNetTorch(**SMALL).eval()
  # beta = gamma = 0 at initialisation would switch every block off; random
  # non-zero values (and non-trivial LayerNorm affines) make them count.
  with torch.no_grad():
    for name, p in net.named_parameters():
      if name.endswith(('beta', 'gamma')):
        p.copy_(torch.randn_like(p))
      elif '.norm' in name:
        p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith('weight')
                                             else 0.0))
  return net


def _state(net):
  return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def test_equals_the_pytorch_reference_on_an_odd_size(tmp_path):
  torch = pytest.importorskip('torch')
  net = _torch_net(torch)
  x = np.random.default_rng(0).uniform(0, 1, (1, 21, 30, 3)).astype(
      np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(np.ascontiguousarray(
        x.transpose(0, 3, 1, 2)))).numpy().transpose(0, 2, 3, 1)
  # A released checkpoint is {'params': state_dict}: through the file
  # loader and the command line.
  torch.save({'params': net.state_dict()}, tmp_path / 'nafnet.pth')
  out = convert.main(['nafnet', str(tmp_path / 'nafnet.pth'),
                      str(tmp_path / 'flax.npz'),
                      '--nafnet-options', json.dumps(SMALL)])
  params = convert.load_params(out)
  model = nafnet.NAFNet(**SMALL)
  got = jax.jit(lambda p, v: model.apply({'params': p}, v))(params, x)
  assert got.shape == x.shape
  np.testing.assert_allclose(got, expected, atol=1e-4)
  assert np.abs(expected - x).max() > 0.1  # the blocks matter
  # The in-memory wrapped dict converts the same.
  direct = convert.convert_nafnet({'params': _state(net)}, **SMALL)
  jax.tree.map(np.testing.assert_array_equal, direct, params)


TINY = dict(width=4, middle_blk_num=1, enc_blk_nums=(1,), dec_blk_nums=(1,))


def _random_params(model, shape, seed):
  """Random parameters of `model`'s shapes (no init compile: fast)."""
  template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                               jnp.zeros(shape)))['params']
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda leaf: jnp.asarray(
      0.2 * rng.normal(size=leaf.shape), jnp.float32), template)


def test_jit_equals_eager_and_gradients_are_finite():
  model = models.get_model('nafnet', **TINY)
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 9, 7, 3)),
                  jnp.float32)
  params = _random_params(model, x.shape, 2)   # beta, gamma != 0
  apply = lambda p, v: model.apply({'params': p}, v)  # noqa: E731
  eager = apply(params, x)
  assert eager.shape == x.shape
  np.testing.assert_allclose(jax.jit(apply)(params, x), eager, rtol=1e-5,
                             atol=1e-5)
  grads = jax.jit(jax.grad(lambda p, v: jnp.mean((apply(p, v) - 0.5)**2),
                           argnums=(0, 1)))(params, x)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert np.abs(grads[0]['encoders_0_0']['beta']).max() > 0
  assert np.abs(grads[1]).max() > 0


def test_shapes_identity_blocks_and_errors():
  # Lists from a config become tuples: the module stays hashable (a jit
  # static argument in rawjax.methods.semiisp.evaluation).
  model = models.model_from_config(dict(name='nafnet', width=8,
                                        enc_blk_nums=[1, 0],
                                        dec_blk_nums=[0, 1]))
  assert model.enc_blk_nums == (1, 0) and hash(model) == hash(
      nafnet.NAFNet(width=8, enc_blk_nums=(1, 0), dec_blk_nums=(0, 1)))
  # Leading axes are batch axes; any H, W.
  out = jax.eval_shape(lambda: model.init_with_output(
      jax.random.PRNGKey(0), jnp.zeros((2, 3, 7, 9, 3)))[0])
  assert out.shape == (2, 3, 7, 9, 3)
  # beta = gamma = 0 at initialisation: a block is the identity.
  block = nafnet.NAFBlock()
  y = jnp.asarray(np.random.default_rng(3).normal(size=(1, 5, 4, 4)),
                  jnp.float32)
  variables = jax.jit(block.init)(jax.random.PRNGKey(1), y)
  assert not np.any(variables['params']['beta'])
  assert not np.any(variables['params']['gamma'])
  np.testing.assert_array_equal(jax.jit(block.apply)(variables, y), y)
  with pytest.raises(ValueError, match=r'\(\.\.\., H, W, 3\)'):
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                      jnp.zeros((1, 8, 8, 2))))
  with pytest.raises(ValueError, match='same length'):
    jax.eval_shape(lambda: nafnet.NAFNet(enc_blk_nums=(1,)).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3))))


def test_depthwise_conv_equals_the_grouped_convolution():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 6, 5, 4)),
                  jnp.float32)
  conv = layers.DepthwiseConv(3)
  variables = conv.init(jax.random.PRNGKey(0), x)
  kernel = variables['params']['kernel']
  assert kernel.shape == (3, 3, 1, 4)
  expected = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), ((1, 1), (1, 1)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=4)
  np.testing.assert_allclose(conv.apply(variables, x),
                             expected + variables['params']['bias'],
                             atol=1e-5)


def _fake_state(**arch):
  """A random state dict with the official keys, built without torch."""
  template = jax.eval_shape(lambda: nafnet.NAFNet(**arch).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3))))['params']
  return state_dicts.random_state_dict(template, seed=5,
                                       per_channel=('beta', 'gamma'))


def test_converter_rejects_missing_misshapen_and_unexpected_keys():
  state = _fake_state(**SMALL)
  for key in ('intro.weight', 'encoders.0.0.conv1.weight', 'downs.0.weight',
              'middle_blks.0.norm1.weight', 'ups.0.0.weight',
              'decoders.0.0.beta', 'ending.bias',
              'encoders.1.0.sca.1.weight'):
    assert key in state
  assert state['encoders.0.0.conv2.weight'].shape == (16, 1, 3, 3)
  params = convert.convert_nafnet({f'module.{k}': v for k, v in
                                   state.items()}, **SMALL)
  np.testing.assert_array_equal(params['decoders_0_0']['beta'],
                                state['decoders.0.0.beta'].reshape(-1))
  np.testing.assert_array_equal(
      params['middle_blks_0']['conv2']['kernel'],
      state['middle_blks.0.conv2.weight'].transpose(2, 3, 1, 0))
  broken = dict(state)
  del broken['middle_blks.0.conv2.bias']
  broken['decoders.1.0.gamma'] = broken['decoders.1.0.gamma'].reshape(-1)
  broken['ups.0.0.bias'] = np.zeros((64,), np.float32)
  with pytest.raises(ValueError) as error:
    convert.convert_nafnet(broken, **SMALL)
  message = str(error.value)
  assert 'missing keys (1): middle_blks.0.conv2.bias' in message
  assert ('decoders.1.0.gamma: expected (1, 8, 1, 1), found (8,)'
          in message)
  assert 'unexpected keys (1): ups.0.0.bias' in message
  # Another architecture (the default SIDD-width32) is rejected, not
  # half-loaded.
  with pytest.raises(ValueError, match='intro.weight: expected'):
    convert.convert_nafnet(state)


def test_semiisp_configs_build_the_nafnet_target():
  for name, variant, width in (('semiisp_fivek', 'quick', 8),
                               ('semiisp_fivek', '', 32),
                               ('semiie_lol', 'quick', 8)):
    options = dict(load_config_module(
        CONFIGS / f'{name}.py').get_config(variant).target_models.nafnet)
    # As semiisp.compare builds config.model from the entry.
    model = models.model_from_config(dict(name=options.pop('name', 'nafnet'),
                                          **options))
    assert isinstance(model, nafnet.NAFNet) and model.width == width
    hash(model)
  assert _count(model, (1, 32, 32, 3)) < 50_000   # the quick one is small
