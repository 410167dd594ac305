"""Uniform-grid LUT interpolation against scipy, gradients, caching."""

import functools

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from rawjax.isp import lut

RNG = np.random.default_rng(0)


def _random_lut(grid_shape, value_shape=(), seed=0):
  rng = np.random.default_rng(seed)
  values = rng.random(tuple(grid_shape) + tuple(value_shape), np.float32)
  lower = rng.uniform(-2, 1, len(grid_shape)).astype(np.float32)
  upper = (lower + rng.uniform(0.5, 3, len(grid_shape))).astype(np.float32)
  return lut.uniform_lut(values, lower, upper)


def _scipy(table: lut.UniformLUT, points, **kwargs):
  values = np.asarray(table.values, np.float64)
  n = np.asarray(points).shape[-1]
  grid = [np.linspace(lo, hi, d) for lo, hi, d in
          zip(np.asarray(table.lower, np.float64),
              np.asarray(table.upper, np.float64), values.shape[:n])]
  return RegularGridInterpolator(grid, values, method='linear', **kwargs)(
      np.asarray(points, np.float64))


def _inside(table, count, seed=1):
  rng = np.random.default_rng(seed)
  return rng.uniform(np.asarray(table.lower), np.asarray(table.upper),
                     (count, len(table.lower))).astype(np.float32)


@pytest.mark.parametrize('grid_shape,value_shape', [
    ((7, 5, 6, 4), ()),        # the 4-D case that matters
    ((4, 5, 6), (3,)),         # vector-valued
    ((3, 4), (2, 5)),
])
def test_matches_scipy_regular_grid_interpolator(variant, grid_shape,
                                                 value_shape):
  table = _random_lut(grid_shape, value_shape, seed=len(grid_shape))
  points = _inside(table, 500)
  out = variant(lut.lut_interpolate)(table, points)
  assert out.shape == (500,) + value_shape
  np.testing.assert_allclose(np.asarray(out), _scipy(table, points), atol=1e-6)
  # The fusion barrier only changes speed (and fused rounding).
  plain = lut.lut_interpolate(table, points, barrier=False)
  np.testing.assert_allclose(np.asarray(plain), np.asarray(out), atol=3e-7)


def test_batched_points_and_per_axis_columns(variant):
  table = _random_lut((5, 6, 7, 3))
  points = _inside(table, 60).reshape(3, 4, 5, 4)
  stacked = variant(lut.lut_interpolate)(table, points)
  assert stacked.shape == (3, 4, 5)
  # Per-axis arrays broadcast: a shared coordinate needs no broadcasting.
  columns = [points[..., 0], points[:1, :1, :1, 1], points[..., 2],
             points[..., 3]]
  expected = _scipy(table, np.stack(np.broadcast_arrays(*columns), -1))
  np.testing.assert_allclose(
      np.asarray(lut.lut_interpolate(table, columns)), expected, atol=1e-6)
  np.testing.assert_allclose(np.asarray(stacked),
                             _scipy(table, points), atol=1e-6)


def test_points_outside_are_clamped_to_the_grid(variant):
  table = _random_lut((4, 5, 3))
  lower, upper = np.asarray(table.lower), np.asarray(table.upper)
  span = upper - lower
  points = RNG.uniform(lower - span, upper + span, (300, 3)).astype(np.float32)
  out = variant(lut.lut_interpolate)(table, points)
  np.testing.assert_allclose(np.asarray(out),
                             _scipy(table, np.clip(points, lower, upper)),
                             atol=1e-6)
  corner = variant(lut.lut_interpolate)(table, np.array([upper + 5.0]))
  np.testing.assert_allclose(np.asarray(corner), table.values[-1, -1, -1:],
                             atol=1e-7)


def test_gradient_with_respect_to_points_is_the_cell_slope():
  """Multilinear is linear along each axis in a cell: central differences
  of the float64 scipy interpolant are exact there."""
  table = _random_lut((6, 5, 7, 4), seed=3)
  lower, upper = np.asarray(table.lower), np.asarray(table.upper)
  step = (upper - lower) / (np.array(table.values.shape) - 1)
  cells = RNG.integers(0, np.array(table.values.shape) - 1, (40, 4))
  points = (lower + (cells + RNG.uniform(0.2, 0.8, (40, 4))) * step).astype(
      np.float32)
  grad = jax.jit(jax.vmap(jax.grad(lambda p, t: lut.lut_interpolate(t, p)),
                          in_axes=(0, None)))(points, table)
  h = 0.05 * step
  expected = np.stack([
      (_scipy(table, points + h * e) - _scipy(table, points - h * e)) /
      (2 * h[n]) for n, e in enumerate(np.eye(4))], -1)
  np.testing.assert_allclose(np.asarray(grad), expected, rtol=2e-4, atol=2e-4)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_gradient_with_respect_to_values_is_the_interpolation_weights():
  table = _random_lut((4, 3, 5), seed=4)
  points = _inside(table, 3)
  size = table.values.size
  # scipy on the identity table returns every node's weight at once.
  identity = lut.UniformLUT(np.eye(size).reshape(table.values.shape + (size,)),
                            table.lower, table.upper)
  gradient = jax.jit(jax.grad(lambda values, p: lut.lut_interpolate(
      lut.UniformLUT(values, table.lower, table.upper), p)))
  for point, weights in zip(points, _scipy(identity, points)):
    grad = gradient(table.values, point)
    np.testing.assert_allclose(np.asarray(grad).ravel(), weights, atol=1e-6)
    assert np.count_nonzero(np.asarray(grad)) <= 8


def test_vmap_over_tables_and_points():
  tables = [_random_lut((5, 4, 6), seed=s) for s in range(3)]
  batched = jax.tree.map(lambda *leaves: jnp.stack(leaves), *tables)
  points = np.stack([_inside(t, 20, seed=s) for s, t in enumerate(tables)])
  out = jax.vmap(lut.lut_interpolate)(batched, points)
  for table, p, o in zip(tables, points, out):
    np.testing.assert_allclose(np.asarray(o), _scipy(table, p), atol=1e-6)


def test_no_recompilation_when_only_table_values_change():
  traces = []

  def interpolate(table, points):
    traces.append(1)
    return lut.lut_interpolate(table, points)

  jitted = jax.jit(interpolate)
  points = np.full((10, 4), 0.3, np.float32)
  outputs = [jitted(_random_lut((6, 5, 4, 3), seed=s), points)
             for s in range(4)]
  assert len(traces) == 1
  assert jitted._cache_size() == 1  # pylint: disable=protected-access
  assert not np.allclose(np.asarray(outputs[0]), np.asarray(outputs[1]))


@hypothesis.settings(deadline=None, max_examples=25)
@hypothesis.given(hnp.arrays(np.float32, (6, 4, 5),
                             elements=hypothesis.strategies.floats(
                                 -10, 10, width=32)),
                  hnp.arrays(np.float32, (8, 3),
                             elements=hypothesis.strategies.floats(
                                 0, 1, width=32)))
def test_values_at_nodes_and_convex_bounds(values, fractions):
  table = lut.uniform_lut(values, [0.0, -1.0, 2.0], [1.0, 1.0, 3.0])
  nodes = np.stack(np.meshgrid(np.linspace(0, 1, 6), np.linspace(-1, 1, 4),
                               np.linspace(2, 3, 5), indexing='ij'), -1)
  at_nodes = _jitted_interpolate(table, nodes.astype(np.float32))
  np.testing.assert_allclose(np.asarray(at_nodes), values, atol=2e-5)
  points = np.asarray(table.lower) + fractions * (
      np.asarray(table.upper) - np.asarray(table.lower))
  out = np.asarray(_jitted_interpolate(table, points))
  assert np.all(out >= values.min() - 1e-5)
  assert np.all(out <= values.max() + 1e-5)


_jitted_interpolate = jax.jit(lut.lut_interpolate)


def test_curves_match_numpy_interp(variant):
  curves = RNG.random((2, 1, 1, 3, 9), np.float32)
  x = RNG.uniform(-0.2, 1.3, (2, 4, 5, 3)).astype(np.float32)
  out = variant(functools.partial(lut.lut_interpolate_curves, lower=-0.5,
                                  upper=1.5))(curves, x)
  assert out.shape == (2, 4, 5, 3)
  grid = np.linspace(-0.5, 1.5, 9)
  expected = np.empty(x.shape)
  for b, i, j, c in np.ndindex(x.shape):
    expected[b, i, j, c] = np.interp(x[b, i, j, c], grid, curves[b, 0, 0, c])
  np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)


def test_invalid_tables_and_points_raise():
  with pytest.raises(ValueError, match='at least 2 nodes'):
    lut.uniform_lut(np.zeros((1, 4)), [0, 0], [1, 1])
  with pytest.raises(ValueError, match='upper bound must exceed'):
    lut.uniform_lut(np.zeros((3, 4)), [0, 1], [1, 1])
  with pytest.raises(ValueError, match='shape'):
    lut.uniform_lut(np.zeros((3, 4)), [0, 0], [1, 1, 1])
  table = _random_lut((3, 4))
  with pytest.raises(ValueError, match='3 query coordinates'):
    lut.lut_interpolate(table, np.zeros((5, 3)))
  with pytest.raises(ValueError, match='does not broadcast'):
    lut.lut_interpolate_curves(np.zeros((3, 5)), np.zeros((4,)))


# --- inverse tables -------------------------------------------------------

def _power(x, p):
  return jnp.power(x, p)


def test_invert_monotone_family_matches_the_analytic_inverse():
  """x^p on [0.5, 3] inverts to y^(1/p); with a warped output axis and an
  encoded value the table stores v = x^p = y at y = s^2 (exact)."""
  axes = [lut.Axis(0.5, 3.0, 11)]
  inputs = np.linspace(0, 1, 4000) ** 2
  table = lut.invert_monotone_family(_power, axes, lut.Axis(0, 1, 33),
                                     input_nodes=inputs, progress=False)
  p = axes[0].nodes()[:, None]
  y = np.linspace(0, 1, 33)[None]
  np.testing.assert_allclose(table, y ** (1 / p), atol=3e-4)
  encoded = lut.invert_monotone_family(
      _power, axes, lut.Axis(0, 1, 33), input_nodes=inputs,
      output_from_coordinate=np.square, encode=_power, progress=False)
  np.testing.assert_allclose(encoded, np.broadcast_to(y ** 2, table.shape),
                             atol=5e-6)


def test_inverse_table_of_a_two_parameter_family():
  """f(x; a, b) = (a x + b x^3) / (a + b): rows over both parameter axes."""
  def forward(x, a, b):
    return (a * x + b * x ** 3) / (a + b)
  axes = [lut.Axis(0.5, 2.0, 4), lut.Axis(0.0, 1.0, 3)]
  table = lut.invert_monotone_family(forward, axes, lut.Axis(0, 1, 17),
                                     input_nodes=np.linspace(0, 1, 3000),
                                     progress=False)
  a, b = np.meshgrid(axes[0].nodes(), axes[1].nodes(), indexing='ij')
  back = forward(table, a[..., None], b[..., None])
  np.testing.assert_allclose(back, np.broadcast_to(np.linspace(0, 1, 17),
                                                   back.shape), atol=2e-6)


def test_cached_inverse_lut_round_trips_through_the_disk_cache(tmp_path):
  traces = []

  def forward(x, p):
    traces.append(1)
    return jnp.power(x, p)

  kwargs = dict(name='power', version=1, input_nodes=np.linspace(0, 1, 500),
                cache_dir=tmp_path, progress=False)
  axes, output = [lut.Axis(1.0, 2.0, 5)], lut.Axis(0.0, 1.0, 9)
  built = lut.cached_inverse_lut(forward, axes, output, **kwargs)
  assert traces and isinstance(built, lut.UniformLUT)
  files = sorted((tmp_path / 'luts').iterdir())
  assert len(files) == 1 and files[0].name.startswith('power-v1-')
  assert files[0].suffix == '.npz'
  np.testing.assert_array_equal(np.asarray(built.lower), [1.0, 0.0])
  np.testing.assert_array_equal(np.asarray(built.upper), [2.0, 1.0])

  traces.clear()
  assert lut.cached_inverse_lut(forward, axes, output, **kwargs) is built
  lut.clear_lut_memory_cache()
  loaded = lut.cached_inverse_lut(forward, axes, output, **kwargs)
  assert not traces, 'the table should come from disk, not be rebuilt'
  np.testing.assert_array_equal(np.asarray(loaded.values),
                                np.asarray(built.values))

  # Another version or grid is another file; a damaged file is rebuilt.
  lut.cached_inverse_lut(forward, axes, output, **dict(kwargs, version=2))
  lut.cached_inverse_lut(forward, [lut.Axis(1.0, 2.0, 6)], output, **kwargs)
  assert len(list((tmp_path / 'luts').glob('*.npz'))) == 3
  files[0].write_bytes(b'not an npz file')
  lut.clear_lut_memory_cache()
  rebuilt = lut.cached_inverse_lut(forward, axes, output, **kwargs)
  np.testing.assert_array_equal(np.asarray(rebuilt.values),
                                np.asarray(built.values))
  assert not list((tmp_path / 'luts').glob('*.tmp'))


def test_cache_directory_follows_the_environment(tmp_path, monkeypatch):
  monkeypatch.setenv(lut.CACHE_ENV, str(tmp_path / 'here'))
  assert lut.cache_directory() == tmp_path / 'here'
  monkeypatch.delenv(lut.CACHE_ENV)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert lut.cache_directory() == tmp_path / 'rawjax'


def test_invert_monotone_family_rejects_bad_inputs():
  with pytest.raises(ValueError, match='strictly increasing'):
    lut.invert_monotone_family(_power, [lut.Axis(1, 2, 3)], lut.Axis(0, 1, 4),
                               input_nodes=[0.0, 0.5, 0.5, 1.0],
                               progress=False)
  with pytest.raises(ValueError, match='at least one parameter'):
    lut.invert_monotone_family(_power, [], lut.Axis(0, 1, 4),
                               input_nodes=[0.0, 1.0], progress=False)
