"""PQDynamicNet: the PQDynamicISP parameter network (SemiISP's f_ISP)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rawjax import models
from rawjax.isp import pqdynamic
from rawjax.models import pqdynamic_net

_OPTIONS = dict(features=4, depth=2, resize=16, grid=2)


def _model(variant, **changes):
  return models.get_model('pqdynamic_net', variant=variant,
                          **{**_OPTIONS, **changes})


@pytest.fixture(scope='module')
def images():
  return jnp.asarray(np.random.default_rng(0).uniform(
      0.02, 0.98, (2, 12, 20, 3)).astype(np.float32))


@pytest.fixture(scope='module', params=pqdynamic_net.VARIANTS)
def built(request, images):
  model = _model(request.param)
  params = jax.jit(lambda k: model.init(k, images)['params'])(
      jax.random.PRNGKey(0))
  # A non-zero head, so the outputs depend on the image.
  params = dict(params)
  rng = np.random.default_rng(1)
  params['head'] = {k: jnp.asarray(rng.normal(0, 0.3, v.shape), jnp.float32)
                    for k, v in params['head'].items()}
  return model, params


def _reference_bilinear(grid: np.ndarray, height: int, width: int):
  """Half-pixel-centre bilinear upsampling with edge clamping (numpy)."""
  g_h, g_w = grid.shape[-3:-1]

  def weights(n_out, n_in):
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = src - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - frac
    matrix[np.arange(n_out), high] += frac
    return matrix

  return np.einsum('yi,xj,...ijp->...yxp', weights(height, g_h),
                   weights(width, g_w), grid)


def test_registered_and_zero_head_is_mid_range_isp(images, variant):
  model = _model('global')
  params = jax.jit(lambda k: model.init(k, images)['params'])(
      jax.random.PRNGKey(3))
  out = variant(functools.partial(model.apply, {'params': params}))(images)
  # The zero head predicts z = 0: identity colour matrix, mid-range curves.
  expected = pqdynamic.isp_forward(
      images, pqdynamic.params_from_unconstrained(
          jnp.zeros((2, pqdynamic.NUM_PARAMS))))
  np.testing.assert_allclose(out, expected, atol=1e-6)
  assert 'pqdynamic_net' in models.model_names()


def test_outputs_and_parameter_shapes(built, images, variant):
  model, params = built
  apply = functools.partial(model.apply, {'params': params})
  z = variant(functools.partial(apply, method='predict'))(images)
  out = variant(apply)(images)
  if model.variant == 'global':
    assert z.shape == (2, pqdynamic.NUM_PARAMS)
  else:
    assert z.shape == (2, 2, 2, pqdynamic.NUM_PARAMS)
  assert out.shape == images.shape
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  # f_ISP output = the function family applied with the predicted params.
  per_pixel = model.variant == 'local'
  params_isp = model.to_params(z, 12, 20)
  np.testing.assert_allclose(
      out, pqdynamic.isp_forward(images, params_isp, per_pixel=per_pixel),
      atol=1e-6)
  # Image-dependent: two different images get different parameter sets.
  assert float(jnp.max(jnp.abs(z[0] - z[1]))) > 1e-4


def test_local_interpolation_matches_bilinear_reference(variant):
  grid = np.random.default_rng(2).normal(size=(2, 3, 3, 5)).astype(np.float32)
  out = variant(functools.partial(pqdynamic_net.interpolate_grid, height=12,
                                  width=9))(grid)
  np.testing.assert_allclose(out, _reference_bilinear(grid, 12, 9),
                             atol=1e-5)


def test_constant_grid_equals_global(images):
  model_local = _model('local')
  model_global = _model('global')
  z = jnp.asarray(np.random.default_rng(4).normal(
      0, 0.5, (2, pqdynamic.NUM_PARAMS)), jnp.float32)
  grid = jnp.broadcast_to(z[:, None, None], (2, 2, 2, z.shape[-1]))
  local = model_local.render(images, grid)
  np.testing.assert_allclose(local, model_global.render(images, z),
                             atol=2e-5)


def test_gradients_finite(built, images):
  model, params = built
  grads = jax.jit(jax.grad(lambda p: jnp.mean(
      model.apply({'params': p}, images))))(params)
  leaves = jax.tree.leaves(grads)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
  assert any(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)


def test_enhancement_variant_predicts_45(images):
  model = _model('global', with_itm=True)
  z = jax.jit(lambda k: model.init_with_output(
      k, images, method='predict')[0])(jax.random.PRNGKey(0))
  assert z.shape == (2, pqdynamic.NUM_PARAMS_WITH_ITM)


@pytest.mark.parametrize('options, message', [
    (dict(variant='middle'), 'variant'),
    (dict(resize=10), 'resize'),
    (dict(variant='local', grid=3), 'grid'),
])
def test_bad_options_raise(images, options, message):
  model = _model(options.pop('variant', 'global'), **options)
  with pytest.raises(ValueError, match=message):
    model.init(jax.random.PRNGKey(0), images)


def test_bad_input_raises():
  model = _model('global')
  with pytest.raises(ValueError, match=r'\(N, H, W, 3\)'):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 4)))
