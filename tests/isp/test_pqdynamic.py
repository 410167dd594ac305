"""PQDynamicISP curves against their formulas; inverses, LUT accuracy, ranges."""

import functools

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from rawjax.isp import lut, pqdynamic as pq

RNG = np.random.default_rng(0)
R = pq.DEFAULT_RANGES
st = hypothesis.strategies
unit = st.floats(0, 1, width=32)


@pytest.fixture(scope='module')
def luts(tmp_path_factory) -> pq.InverseLUTs:
  """The paper-grid tables (60 x 30 x 30 x 512), built once for the module."""
  return pq.default_luts(with_itm=True,
                         cache_dir=tmp_path_factory.mktemp('lut_cache'),
                         progress=False)


# --- float64 references written from the documented formulas ----------------

def _gain_reference(x, g, t, s):
  x = np.asarray(x, np.float64)
  knee_in = t / g
  a = (g - t) / (1 - t)
  u = np.clip((x - knee_in) / (1 - knee_in), 0, 1)
  h = a * u / (1 + (a ** s - 1) * u ** s) ** (1 / s)
  return np.where(x <= knee_in, g * x, t + (1 - t) * h)


def _mixture_reference(x, a, b, k):
  x = np.asarray(x, np.float64)
  return k * x ** a + (1 - k) * x ** b


def _curve_params(shape=(3,), seed=0, ranges=(R.gain, R.knee, R.softness)):
  rng = np.random.default_rng(seed)
  gain = np.exp(rng.uniform(*np.log(ranges[0]), shape))
  return pq.CurveParams(*(np.asarray(v, np.float32) for v in (
      gain, rng.uniform(*ranges[1], shape), rng.uniform(*ranges[2], shape))))


def _mixture_params(shape=(3,), seed=0, exponent_range=R.gamma):
  rng = np.random.default_rng(seed)
  return pq.MixtureParams(*(rng.uniform(*r, shape).astype(np.float32) for r in
                            (exponent_range, exponent_range, (0, 1))))


def _image(shape=(2, 5, 6, 3), seed=1):
  x = np.random.default_rng(seed).random(shape, np.float32)
  x.reshape(-1)[:2] = (0.0, 1.0)
  return x


def _per_pixel_view(params, shape):
  return type(params)(*(np.asarray(v)[..., None, None, :] * np.ones(
      shape[:-1] + (1,), np.float32) for v in params))


# --- forward curves -----------------------------------------------------------

@pytest.mark.parametrize('name', ['gain_curve', 'contrast_stretch'])
def test_gain_family_matches_its_formula(variant, name):
  x = _image()
  params = _curve_params((2, 3))
  out = variant(getattr(pq, name))(x, params)
  expected = _gain_reference(x, *(np.float64(v)[:, None, None, :]
                                  for v in params))
  np.testing.assert_allclose(np.asarray(out), expected, atol=2e-6)
  per_pixel = variant(functools.partial(getattr(pq, name), per_pixel=True))(
      x, _per_pixel_view(params, x.shape[1:]))
  np.testing.assert_allclose(np.asarray(per_pixel), np.asarray(out),
                             atol=5e-7)


def test_gain_curve_shape_properties():
  """Slope g at 0, continuous slope at the knee, y(1) = 1 without clipping."""
  g, t, s = 6.0, 0.4, 1.0
  params = pq.CurveParams(*(np.full((3,), v, np.float32) for v in (g, t, s)))
  knee_in = t / g
  h = 1e-3
  x = np.array([0, h, knee_in - h, knee_in, knee_in + h, 1 - h, 1.0],
               np.float32)
  y = np.asarray(pq.gain_curve(np.repeat(x[None, :, None], 3, -1), params))
  y = y[0, :, 0]
  assert y[-1] == pytest.approx(1.0, abs=1.2e-7)  # 1 at 1 up to an ulp
  assert y[1] / h == pytest.approx(g, rel=1e-4)
  left = (y[3] - y[2]) / h
  right = (y[4] - y[3]) / h
  assert left == pytest.approx(g, rel=1e-3)
  assert right == pytest.approx(g, rel=0.05)  # C1: no kink at the knee
  assert 0 < (y[-1] - y[-2]) / h < 1


@pytest.mark.parametrize('name,exponent', [('gamma_tone_map', lambda p: 1 / p),
                                           ('inverse_tone_map', lambda p: p)])
def test_mixtures_match_their_formulas(variant, name, exponent):
  x = _image()
  params = _mixture_params((2, 3))
  out = variant(getattr(pq, name))(x, params)
  p1, p2, k = (np.float64(v)[:, None, None, :] for v in params)
  np.testing.assert_allclose(
      np.asarray(out), _mixture_reference(x, exponent(p1), exponent(p2), k),
      atol=2e-6)


def test_color_correction_is_a_matrix_product(variant):
  x = _image()
  matrix = RNG.uniform(-0.5, 1.5, (2, 3, 3)).astype(np.float32)
  out = variant(pq.color_correction)(x, matrix)
  np.testing.assert_allclose(np.asarray(out),
                             np.einsum('bij,bhwj->bhwi', matrix, x), atol=1e-6)
  back = variant(pq.inverse_color_correction)(out, matrix)
  np.testing.assert_allclose(np.asarray(back), x, atol=1e-5)
  per_pixel = matrix[:, None, None] * np.ones((1, 5, 6, 1, 1), np.float32)
  np.testing.assert_allclose(
      np.asarray(pq.color_correction(x, per_pixel, per_pixel=True)),
      np.asarray(out), atol=1e-6)


# --- analytic inverses: property tests over the whole ranges ------------------

def _curve_strategy(ranges):
  gain, knee, softness = ranges
  return st.tuples(st.floats(*gain), st.floats(*knee), st.floats(*softness))


_pixels = hnp.arrays(np.float32, (1, 2, 8, 3), elements=unit)
_gain_round_trip = jax.jit(
    lambda x, p: pq.inverse_gain_curve(pq.gain_curve(x, p), p))
_cs_round_trip = jax.jit(
    lambda x, p: pq.inverse_contrast_stretch(pq.contrast_stretch(x, p), p))


@hypothesis.settings(deadline=None, max_examples=40)
@hypothesis.given(_pixels, _curve_strategy((R.gain, R.knee, R.softness)),
                  _curve_strategy((R.cs_gain, R.cs_knee, R.cs_softness)))
def test_gain_and_contrast_inverses_round_trip(x, ga, cs):
  x[0, 0, :2] = [[0, 0, 0], [1, 1, 1]]
  for round_trip, (g, t, s) in ((_gain_round_trip, ga), (_cs_round_trip, cs)):
    params = pq.CurveParams(*(np.full((1, 3), v, np.float32)
                              for v in (g, t, s)))
    np.testing.assert_allclose(np.asarray(round_trip(x, params)), x,
                               atol=1e-5)


_cc_round_trip = jax.jit(lambda x, z: pq.inverse_color_correction(
    pq.color_correction(x, pq.params_from_unconstrained(z).cc),
    pq.params_from_unconstrained(z).cc))


@hypothesis.settings(deadline=None, max_examples=40)
@hypothesis.given(_pixels, hnp.arrays(np.float32, (1, 9),
                                      elements=st.floats(-20, 20, width=32)))
def test_color_correction_inverse_round_trips_over_its_range(x, z):
  z = np.concatenate([z, np.zeros((1, pq.NUM_PARAMS - 9), np.float32)], -1)
  np.testing.assert_allclose(np.asarray(_cc_round_trip(x, z)), x, atol=1e-5)


_forward_all = jax.jit(lambda x, p: (
    pq.gain_curve(x, p.ga), pq.gamma_tone_map(x, p.gm),
    pq.contrast_stretch(x, p.cs), pq.inverse_tone_map(x, p.itm)))


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(hnp.arrays(np.float32, (64,), elements=unit),
                  hnp.arrays(np.float32, (1, pq.NUM_PARAMS_WITH_ITM),
                             elements=st.floats(-30, 30, width=32)))
def test_curves_stay_in_unit_range_and_are_monotone(x, z):
  x = np.sort(np.concatenate([x, [0.0, 1.0]]))
  image = np.repeat(x[None, None, :, None], 3, -1)
  for y in _forward_all(image, pq.params_from_unconstrained(z)):
    y = np.asarray(y)[0, 0]
    assert np.all((y >= 0) & (y <= 1))
    assert np.all(np.diff(y, axis=0) >= 0)
    np.testing.assert_allclose(y[-1], 1.0, atol=1e-6)
    np.testing.assert_allclose(y[0], 0.0, atol=1e-6)


# --- gradients ----------------------------------------------------------------

def _edge_params():
  """Parameters at both ends of every range (rows), per channel."""
  low = np.full((1, pq.NUM_PARAMS_WITH_ITM), -30.0, np.float32)
  high = -low
  mixed = np.where(np.arange(pq.NUM_PARAMS_WITH_ITM) % 2, 30.0, -30.0)
  return pq.params_from_unconstrained(
      np.concatenate([low, high, mixed[None], np.zeros_like(low)]))


def test_gradients_are_finite_at_the_edges(luts):
  x = np.array([0.0, 1e-30, 1e-6, 0.03, 0.5, 1 - 1e-7, 1.0], np.float32)
  image = np.repeat(x[None, None, :, None], 3, -1)
  params = _edge_params()

  def total(image, params, luts):
    # Every stage and every inverse (with f_IT), the inverses with a Newton
    # step through the LUT lookups.
    forward = pq.isp_forward(image, params)
    inverse = pq.isp_inverse(image, params, luts=luts, newton_steps=1)
    return forward.sum() + inverse.sum()

  # As the Flax examples' one-step tests: compile without most XLA
  # optimisations (this graph takes twice as long to compile with them).
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    grads = jax.jit(jax.grad(total, argnums=(0, 1)))(image, params, luts)
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert np.any(np.asarray(grads[0]) != 0)


# --- LUT inverses -------------------------------------------------------------

_FAMILIES = {'gm': (pq.inverse_gamma_tone_map, lambda p: 1 / p, R.gamma),
             'itm': (pq.inverse_inverse_tone_map, lambda p: p, R.itm_exponent)}


@functools.lru_cache(maxsize=None)
def _inverse(kind, steps, per_pixel):
  fn = _FAMILIES[kind][0]
  return jax.jit(lambda y, p, table: fn(y, p, lut=table, newton_steps=steps,
                                        per_pixel=per_pixel))


def _round_trip_errors(kind, table, steps, per_pixel):
  _, exponent, p_range = _FAMILIES[kind]
  if per_pixel:  # 300k random points in the grid's interior
    params = _mixture_params((100000, 1, 3), seed=5, exponent_range=p_range)
    y = np.random.default_rng(6).random((100000, 1, 3), np.float32)
  else:  # 64 parameter sets, one 40 x 40 image each
    params = _mixture_params((64, 3), seed=7, exponent_range=p_range)
    y = np.random.default_rng(8).random((64, 40, 40, 3), np.float32)
  x = np.asarray(_inverse(kind, steps, per_pixel)(y, params, table))
  p1, p2, k = (np.float64(v) if per_pixel else np.float64(v)[:, None, None]
               for v in params)
  return np.abs(_mixture_reference(x, exponent(p1), exponent(p2), k) - y)


@pytest.mark.parametrize('kind', ['gm', 'itm'])
@pytest.mark.parametrize('per_pixel', [True, False])
def test_lut_round_trip_meets_the_papers_figures(luts, kind, per_pixel):
  """|f(f^-1(y)) - y|: LUT only mean <= 1.1e-5, max <= 6.5e-5 (the paper's
  figures); one Newton step mean <= 1e-6."""
  table = getattr(luts, kind)
  assert table.values.shape == pq.PAPER_LUT_SHAPE
  lut_only = _round_trip_errors(kind, table, 0, per_pixel)
  assert lut_only.mean() <= 1.1e-5
  assert lut_only.max() <= 6.5e-5
  refined = _round_trip_errors(kind, table, 1, per_pixel)
  assert refined.mean() <= 1e-6
  assert refined.max() <= 2e-6


def test_global_and_per_pixel_lookups_agree(variant, luts):
  y = _image((2, 4, 5, 3))
  params = _mixture_params((2, 3), seed=3)
  # The table is an argument, so `jit` traces it instead of embedding it.
  glob = variant(lambda y, p, table: pq.inverse_gamma_tone_map(
      y, p, lut=table))(y, params, luts.gm)
  local = variant(lambda y, p, table: pq.inverse_gamma_tone_map(
      y, p, lut=table, per_pixel=True))(
          y, _per_pixel_view(params, y.shape[1:]), luts.gm)
  np.testing.assert_allclose(np.asarray(glob), np.asarray(local), atol=1e-6)


def test_lut_lookup_equals_scipy_on_the_same_table(luts):
  """SemiISP's Algorithm 1 (2): scipy's RegularGridInterpolator on the table
  at (p_g1, p_g2, k, sqrt(y)), then our documented decoding x = v^(1/E)."""
  table = luts.gm
  params = _mixture_params((50, 1, 3), seed=9)
  y = RNG.random((50, 1, 3)).astype(np.float32)
  ours = np.asarray(pq.inverse_gamma_tone_map(y, params, lut=table,
                                              per_pixel=True))
  grid = [np.linspace(lo, hi, d) for lo, hi, d in
          zip(np.asarray(table.lower), np.asarray(table.upper),
              table.values.shape)]
  p1, p2, k = (np.float64(v) for v in params)
  points = np.stack([p1, p2, k, np.sqrt(y)], -1)
  v = RegularGridInterpolator(grid, np.asarray(table.values))(points)
  expected = v ** (p1 ** k * p2 ** (1 - k))
  np.testing.assert_allclose(ours, expected, atol=2e-6)


def test_lut_is_cached_on_disk(luts, tmp_path_factory):
  files = list(tmp_path_factory.getbasetemp().glob('lut_cache*/luts/*.npz'))
  assert {f.name.split('-v')[0] for f in files} == {'pqdynamic-gm',
                                                    'pqdynamic-itm'}
  lut.clear_lut_memory_cache()
  again = pq.gamma_tone_map_lut(cache_dir=files[0].parents[1], progress=False)
  np.testing.assert_array_equal(np.asarray(again.values),
                                np.asarray(luts.gm.values))


# --- the composed ISP ---------------------------------------------------------

def _unclipped(raw, params):
  """Pixels whose colour correction stays in [0, 1] (`isp_forward` clips)."""
  x = raw if params.itm is None else pq.inverse_tone_map(raw, params.itm)
  corrected = np.asarray(pq.color_correction(x, params.cc))
  return np.all((corrected >= 0) & (corrected <= 1), axis=-1)


@pytest.mark.parametrize('with_itm', [False, True])
def test_isp_round_trip_per_image_batches(luts, with_itm):
  z = RNG.normal(0, 1.5, (3, pq.NUM_PARAMS_WITH_ITM if with_itm
                          else pq.NUM_PARAMS)).astype(np.float32)
  params = pq.params_from_unconstrained(z)
  raw = _image((3, 8, 8, 3), seed=2)
  srgb = jax.jit(pq.isp_forward)(raw, params)
  assert srgb.shape == raw.shape
  assert np.all((np.asarray(srgb) >= 0) & (np.asarray(srgb) <= 1))
  inverse = jax.jit(functools.partial(pq.isp_inverse, newton_steps=1))
  back = np.asarray(inverse(srgb, params, luts=luts))
  keep = _unclipped(raw, params)
  assert keep.mean() > 0.2
  np.testing.assert_allclose(back[keep], raw[keep], atol=1e-4)
  assert np.all((back >= 0) & (back <= 1))


def test_isp_one_image_many_parameter_sets_and_per_pixel(luts):
  """SemiISP's one-to-many sRGB-to-RAW: one image, N parameter sets."""
  params = pq.params_from_unconstrained(
      RNG.normal(0, 1, (4, pq.NUM_PARAMS)).astype(np.float32))
  srgb = _image((6, 7, 3), seed=4)
  raws = pq.isp_inverse(srgb, params, luts=luts)
  assert raws.shape == (4, 6, 7, 3)
  for i in (0, 3):
    one = jax.tree.map(lambda v, i=i: v[i], params)
    np.testing.assert_allclose(np.asarray(raws[i]),
                               np.asarray(pq.isp_inverse(srgb, one,
                                                         luts=luts)),
                               atol=1e-6)
  one = jax.tree.map(lambda v: v[0], params)
  local = jax.tree.map(
      lambda v: jnp.broadcast_to(v[None, None], (6, 7) + v.shape), one)
  np.testing.assert_allclose(
      np.asarray(pq.isp_inverse(srgb, local, luts=luts, per_pixel=True)),
      np.asarray(raws[0]), atol=1e-5)


def test_isp_inverse_needs_the_itm_table():
  params = pq.params_from_unconstrained(
      np.zeros((pq.NUM_PARAMS_WITH_ITM,), np.float32))
  no_itm = pq.InverseLUTs(gm=lut.UniformLUT(np.zeros((2, 2, 2, 2)),
                                            np.zeros(4), np.ones(4)))
  with pytest.raises(ValueError, match='luts.itm is None'):
    pq.isp_inverse(np.zeros((2, 2, 3)), params, luts=no_itm)


# --- range maps ---------------------------------------------------------------

@hypothesis.settings(deadline=None, max_examples=40)
@hypothesis.given(hnp.arrays(np.float32, (2, pq.NUM_PARAMS_WITH_ITM),
                             elements=st.floats(-30, 30, width=32)),
                  hnp.arrays(np.float32, (2, pq.NUM_PARAMS_WITH_ITM),
                             elements=st.floats(-5, 5, width=32)))
def test_range_maps_respect_the_ranges_and_invert(z, moderate_z):
  params = _from_unconstrained(z)
  checks = [(params.ga.gain, R.gain), (params.ga.knee, R.knee),
            (params.ga.softness, R.softness), (params.cs.gain, R.cs_gain),
            (params.cs.knee, R.cs_knee), (params.cs.softness, R.cs_softness),
            (params.gm.p1, R.gamma), (params.gm.p2, R.gamma),
            (params.gm.k, (0, 1)), (params.itm.p1, R.itm_exponent),
            (params.itm.p2, R.itm_exponent), (params.itm.k, (0, 1))]
  for value, (low, high) in checks:
    value = np.asarray(value)
    assert value.shape == (2, 3)
    assert np.all((value >= low - 1e-6) & (value <= high + 1e-6))
  cc = np.asarray(params.cc, np.float64)
  diagonal = np.abs(np.diagonal(cc, axis1=-2, axis2=-1))
  assert np.all((diagonal >= 1 / R.cc_diagonal - 1e-6) &
                (diagonal <= R.cc_diagonal + 1e-6))
  off = np.abs(cc).sum(-1) - diagonal
  assert np.all(off <= 2 * R.cc_off_diagonal * diagonal + 1e-6)
  # Saturated sigmoids and tanh lose resolution: invert moderate values.
  back = np.asarray(_to_unconstrained(_from_unconstrained(moderate_z)))
  np.testing.assert_allclose(back, moderate_z, atol=2e-3)


_from_unconstrained = jax.jit(pq.params_from_unconstrained)
_to_unconstrained = jax.jit(pq.unconstrained_from_params)


def test_zero_network_output_is_the_identity_matrix():
  params = pq.params_from_unconstrained(np.zeros(pq.NUM_PARAMS, np.float32))
  np.testing.assert_allclose(np.asarray(params.cc), np.eye(3), atol=1e-7)
  assert params.itm is None


def test_bad_inputs_raise():
  params = pq.params_from_unconstrained(np.zeros(pq.NUM_PARAMS, np.float32))
  with pytest.raises(ValueError, match='3 channels'):
    pq.isp_forward(np.zeros((4, 4, 4)), params)
  with pytest.raises(ValueError, match='one value per colour channel'):
    pq.gain_curve(np.zeros((4, 4, 3)), params.ga._replace(gain=np.ones(4)))
  with pytest.raises(ValueError, match='matrix must have shape'):
    pq.color_correction(np.zeros((4, 4, 3)), np.eye(4))
  with pytest.raises(ValueError, match='36'):
    pq.params_from_unconstrained(np.zeros(35))
  with pytest.raises(ValueError, match='4-D table'):
    pq.inverse_gamma_tone_map(np.zeros((2, 2, 3)), params.gm,
                              lut=lut.UniformLUT(np.zeros((2, 2)), np.zeros(2),
                                                 np.ones(2)))
  with pytest.raises(ValueError, match='exponent range'):
    pq.gamma_tone_map_lut(p_range=(2.0, 1.0))
