"""LPIPS v0.1 (AlexNet): the Flax port against an independent PyTorch one.

tests/torch_reference/lpips_torch.py (written from the spec, random weights,
non-negative lin weights as released) is converted with
`rawjax.convert.convert_lpips` from the two published layouts (torchvision's
alexnet state dict, the lpips package's lin weights) and the distances are
compared; also the converter's key checks, d(x, x) = 0, finite gradients
and the LiteISPNet evaluation's config check.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import convert
from rawjax.models import lpips

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

torch = pytest.importorskip('torch')


@pytest.fixture(scope='module')
def reference():
  from torch_reference.lpips_torch import make_lpips_alex  # noqa: E402
  model = make_lpips_alex(seed=0)
  alexnet = {k: v.detach().clone() for k, v in model.net.state_dict().items()}
  # torchvision's checkpoint also holds the classifier: ignored.
  alexnet['classifier.1.weight'] = torch.zeros(4096, 9216)
  alexnet['classifier.1.bias'] = torch.zeros(4096)
  return model, alexnet, model.lin_state_dict()


@pytest.fixture(scope='module')
def images():
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (2, 3, 64, 64)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1).astype(np.float32)
  return x, y


def _nhwc(x):
  return jnp.asarray(np.transpose(x, (0, 2, 3, 1)))


@pytest.mark.parametrize('normalize', [False, True])
def test_matches_the_torch_reference(reference, images, normalize):
  model, alexnet, lin = reference
  params = convert.convert_lpips(alexnet, lin)
  x, y = images
  if not normalize:
    x, y = 2 * x - 1, 2 * y - 1
  with torch.no_grad():
    expected = model(torch.from_numpy(x), torch.from_numpy(y),
                     normalize=normalize).numpy()
  got = np.asarray(jax.jit(lpips.lpips_distance, static_argnames='normalize')(
      params, _nhwc(x), _nhwc(y), normalize=normalize))
  assert got.shape == (2,)
  assert np.all(expected > 0)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_identical_images_give_zero_and_gradients_are_finite(reference,
                                                              images):
  _, alexnet, lin = reference
  params = convert.convert_lpips(alexnet, lin)
  x, y = map(_nhwc, images)
  np.testing.assert_array_equal(
      np.asarray(lpips.lpips_distance(params, x, x, normalize=True)), 0.0)
  grad = jax.jit(jax.grad(lambda a: jnp.sum(lpips.lpips_distance(
      params, a, y[:1], normalize=True))))(x[:1])
  assert np.all(np.isfinite(np.asarray(grad)))
  assert np.any(np.asarray(grad) != 0)


def test_converter_names_missing_misshapen_and_unexpected_keys(reference):
  _, alexnet, lin = reference
  alexnet = dict(alexnet)
  del alexnet['features.3.bias']
  alexnet['features.6.weight'] = torch.zeros(384, 192, 5, 5)
  lin = dict(lin)
  del lin['lin4.model.1.weight']
  lin['lin0.model.1.weight'] = torch.zeros(1, 32, 1, 1)
  lin['lin5.model.1.weight'] = torch.zeros(1, 8, 1, 1)
  with pytest.raises(ValueError) as info:
    convert.convert_lpips(alexnet, lin)
  message = str(info.value)
  for expected in ('AlexNet', 'features.3.bias', 'features.6.weight',
                   'LPIPS lin', 'lin4.model.1.weight', 'lin0.model.1.weight',
                   'lin5.model.1.weight', '(1, 64, 1, 1)'):
    assert expected in message
  assert 'classifier' not in message


def test_cli_and_saved_params_round_trip(reference, images, tmp_path):
  model, alexnet, lin = reference
  np.savez(tmp_path / 'alexnet.npz', **{k: v.numpy()
                                        for k, v in alexnet.items()})
  np.savez(tmp_path / 'alex.npz', **{k: v.numpy() for k, v in lin.items()})
  out = convert.main(['lpips', str(tmp_path / 'alexnet.npz'),
                      str(tmp_path / 'lpips.npz'),
                      f'--lpips-lin={tmp_path / "alex.npz"}'])
  params = convert.load_params(out)
  x, y = map(_nhwc, images)
  np.testing.assert_allclose(
      np.asarray(lpips.lpips_distance(params, x, y, normalize=True)),
      np.asarray(lpips.lpips_distance(convert.convert_lpips(alexnet, lin),
                                      x, y, normalize=True)), rtol=1e-6)


def test_liteisp_config_names_a_missing_lpips_file(tmp_path):
  from rawjax.methods import liteisp  # pylint: disable=g-import-not-at-top
  from rawjax.train.config import load_config_module  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(__file__).resolve().parents[2] / 'configs' / (
      'liteisp_zrr.py')
  config = load_config_module(path).get_config('quick')
  assert config.eval.lpips_weights == ''
  liteisp.check_config(config)
  config.eval.lpips_weights = str(tmp_path / 'missing.npz')
  with pytest.raises(ValueError, match='config.eval.lpips_weights'):
    liteisp.check_config(config)
