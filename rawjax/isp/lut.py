"""Multilinear lookup tables on uniform grids, and inverse-function tables.

`lut_interpolate` evaluates an N-D table by multilinear interpolation the way
XLA likes it: every axis is uniform, so a cell index is one multiply and a
`floor` (no `searchsorted`), and the 2^N cell corners are 2^N gathers from the
flattened table, blended axis by axis. The table, its bounds and the query
points are all traced arrays, so a jitted caller compiles once per *shape*:
new table values or bounds never recompile. It is differentiable with respect
to the query points (piecewise linear; zero outside the grid, where points
are clamped) and with respect to the table values (the gather's transpose),
and it vmaps.

`cached_inverse_lut` builds the table of the inverse of a monotone 1-D
function family, x = f^-1(y; p_1..p_K), over (p_1, ..., p_K, y) by monotone
1-D inversion of a dense forward evaluation (SemiISP appendix A.2,
Algorithm 1), vectorised in JAX over the whole parameter grid, and caches it
on disk (keyed by the grid and the function's name and version) so it is
built once per machine.

Clamping: a query coordinate below `lower` or above `upper` is clamped to the
grid (the value at the boundary; zero gradient with respect to that
coordinate). This matches `scipy.interpolate.RegularGridInterpolator` on
points inside the grid, whereas scipy raises and `jax.scipy`'s returns NaN
(or extrapolates) outside it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks

CACHE_ENV = 'RAWJAX_CACHE_DIR'
_CACHE_FORMAT = 1


class UniformLUT(NamedTuple):
  """A table sampled on a uniform grid (a pytree: every field is an array).

  Attributes:
    values: (d_1, ..., d_N, *value_shape) samples; node i_n of axis n sits at
      lower[n] + i_n * (upper[n] - lower[n]) / (d_n - 1). Axes beyond the N
      coordinates of a query are the value's own axes (vector-valued table).
    lower: (N,) first node of each axis.
    upper: (N,) last node of each axis.
  """
  values: jax.Array
  lower: jax.Array
  upper: jax.Array


class Axis(NamedTuple):
  """A static uniform grid axis: `size` nodes from `lower` to `upper`."""
  lower: float
  upper: float
  size: int

  def nodes(self) -> np.ndarray:
    """The node coordinates, float64."""
    return np.linspace(self.lower, self.upper, self.size)


def uniform_lut(values: ArrayLike, lower: ArrayLike,
                upper: ArrayLike) -> UniformLUT:
  """Validated `UniformLUT` constructor (float32 arrays).

  Args:
    values: (d_1, ..., d_N, *value_shape), every d_n >= 2.
    lower: (N,) first node per axis.
    upper: (N,) last node per axis (upper > lower, checked when concrete).
  """
  fn = 'uniform_lut'
  values = _checks.as_float(values, name='values', fn=fn)
  lower = _checks.as_float(lower, name='lower', fn=fn)
  upper = _checks.as_float(upper, name='upper', fn=fn)
  if lower.ndim != 1 or upper.shape != lower.shape:
    raise ValueError(f'{fn}: lower and upper must both have shape (N,), got '
                     f'{tuple(lower.shape)} and {tuple(upper.shape)}.')
  _check_grid(values, lower.shape[0], fn)
  if not isinstance(lower, jax.core.Tracer) and not isinstance(
      upper, jax.core.Tracer) and not bool(jnp.all(upper > lower)):
    raise ValueError(f'{fn}: every upper bound must exceed its lower bound, '
                     f'got lower={np.asarray(lower)}, upper={np.asarray(upper)}.')
  return UniformLUT(values, lower, upper)


def _check_grid(values: jnp.ndarray, num_axes: int, fn: str) -> None:
  if values.ndim < num_axes:
    raise ValueError(f'{fn}: a table with {num_axes} grid axes needs at least '
                     f'{num_axes} dims, got values of shape '
                     f'{tuple(values.shape)}.')
  if any(d < 2 for d in values.shape[:num_axes]):
    raise ValueError(f'{fn}: every grid axis needs at least 2 nodes, got grid '
                     f'shape {tuple(values.shape[:num_axes])}.')


def _clip(x: jnp.ndarray, lo, hi) -> jnp.ndarray:
  # `where` rather than min/max: a point exactly on the boundary keeps its
  # full gradient (lax.min/max split it between the tied operands).
  return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x))


def _fusion_barrier(tree, predicate: jnp.ndarray):
  """Returns `tree` unchanged, materialised: XLA does not fuse across it.

  XLA's CPU backend cannot vectorise a loop that contains a gather, so
  arithmetic fused into a gather's loop (index and weight computation
  before it, exp/log of a caller after it) runs scalar, 2-3x slower. XLA
  drops `lax.optimization_barrier` before fusion on CPU, but never fuses
  across a conditional; the two branches differ (x vs x + 0 x, equal for
  finite x) so the conditional cannot be simplified away, and both give
  `tree` whatever the runtime `predicate`.
  """
  return jax.lax.cond(
      predicate, lambda t: t,
      lambda t: jax.tree.map(lambda x: x + jnp.zeros((), x.dtype) * x, t),
      tree)


def _cell(coordinate: jnp.ndarray, lower, upper, size: int):
  """(index of the lower node, fraction in [0, 1]) along one uniform axis."""
  position = (coordinate - lower) * ((size - 1) / (upper - lower))
  position = _clip(position, 0.0, size - 1.0)
  # Clip after the cast as well, so a NaN coordinate (whose integer cast is
  # arbitrary) still gathers in bounds; its fraction stays NaN.
  index = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, size - 2)
  return index, position - index


def lut_interpolate(lut: UniformLUT,
                    points: ArrayLike | Sequence[ArrayLike], *,
                    barrier: bool = True) -> jax.Array:
  """Multilinear interpolation of a uniform-grid table at query points.

  Args:
    lut: a `UniformLUT` with N grid axes (values (d_1..d_N, *value_shape)).
    points: (..., N) coordinates, or a sequence of N arrays that broadcast
      together (saves stacking per-axis coordinate maps). Coordinates outside
      [lower, upper] are clamped to the grid.
    barrier: keep XLA from fusing the index arithmetic before and the
      caller's arithmetic after into the gathers' loop, which XLA's CPU
      backend cannot vectorise (2-3x faster on CPU; results equal up to
      float rounding).

  Returns:
    (..., *value_shape), the dtype of the table.
  """
  fn = 'lut_interpolate'
  values, lower, upper = lut
  values = _checks.as_float(values, name='lut.values', fn=fn)
  if isinstance(points, (list, tuple)):
    columns = jnp.broadcast_arrays(
        *[_checks.as_float(p, name='points', fn=fn) for p in points])
  else:
    points = _checks.as_float(points, name='points', fn=fn)
    _checks.check_min_rank(points, 1, name='points', fn=fn, layout='(..., N)')
    columns = [points[..., n] for n in range(points.shape[-1])]
  num_axes = len(columns)
  lower = jnp.asarray(lower, values.dtype)
  upper = jnp.asarray(upper, values.dtype)
  if lower.shape != (num_axes,) or upper.shape != (num_axes,):
    raise ValueError(f'{fn}: {num_axes} query coordinates need lut.lower and '
                     f'lut.upper of shape ({num_axes},), got '
                     f'{tuple(lower.shape)} and {tuple(upper.shape)}.')
  _check_grid(values, num_axes, fn)
  if math.prod(values.shape[:num_axes]) >= 2 ** 31:
    raise ValueError(f'{fn}: grids of 2^31 nodes or more overflow the int32 '
                     f'gather index, got {tuple(values.shape[:num_axes])}.')
  return _interpolate(values, lower, upper, tuple(columns), barrier=barrier)


# One compiled program per shape when called eagerly (inlined under jit).
@functools.partial(jax.jit, static_argnames=('barrier',))
def _interpolate(values, lower, upper, columns, *, barrier):
  num_axes = len(columns)
  grid_shape = values.shape[:num_axes]
  value_shape = values.shape[num_axes:]
  batch_shape = columns[0].shape
  strides = [math.prod(grid_shape[n + 1:]) for n in range(num_axes)]
  flat = values.reshape((math.prod(grid_shape),) + value_shape)

  base = 0
  fractions = []
  for n, column in enumerate(columns):
    index, fraction = _cell(column.reshape(-1), lower[n], upper[n],
                            grid_shape[n])
    base = base + index * strides[n]
    fractions.append(fraction.reshape((-1,) + (1,) * len(value_shape)))
  predicate = lower[0] <= upper[0]
  if barrier:
    base, fractions = _fusion_barrier((base, fractions), predicate)

  corners = []
  for corner in range(2 ** num_axes):
    bits = [corner >> (num_axes - 1 - n) & 1 for n in range(num_axes)]
    offset = sum(strides[n] for n in range(num_axes) if bits[n])
    corners.append((bits, flat.at[base + offset].get(mode='promise_in_bounds')))
  if math.prod(value_shape) > 1:
    # Vector values: one weighted sum (a dot). Besides being cheap for long
    # vectors, a dot is never fused into a consumer, so a caller that gathers
    # from the result per pixel reads it instead of recomputing it per pixel.
    weights = []
    for bits, _ in corners:
      weight = 1.0
      for n, bit in enumerate(bits):
        fraction = fractions[n].reshape(-1)
        weight = weight * (fraction if bit else 1.0 - fraction)
      weights.append(weight)
    stacked = jnp.stack([c.reshape(c.shape[0], -1) for _, c in corners], 1)
    out = jnp.einsum('pc,pcv->pv', jnp.stack(weights, 1), stacked,
                     precision=jax.lax.Precision.HIGHEST)
    return out.reshape(batch_shape + value_shape)
  # Scalars: blend one axis at a time (last axis first), 2^N - 1 lerps.
  values_at = [c for _, c in corners]
  for n in reversed(range(num_axes)):
    values_at = [low + fractions[n] * (high - low)
                 for low, high in zip(values_at[0::2], values_at[1::2])]
  out = values_at[0].reshape(batch_shape + value_shape)
  return _fusion_barrier(out, predicate) if barrier else out


def lut_interpolate_curves(curves: ArrayLike, x: ArrayLike, *,
                           lower: ArrayLike = 0.0,
                           upper: ArrayLike = 1.0) -> jax.Array:
  """Linear interpolation in a batch of 1-D tables sharing one uniform grid.

  The fast second half of a separable lookup: when the leading coordinates
  of a 4-D query are shared by many points (one parameter set per image and
  channel), `lut_interpolate` on those coordinates alone returns the curve
  over the last axis, and this evaluates it per pixel with two gathers.

  Args:
    curves: (*batch, n) tables; node j at lower + j (upper - lower) / (n - 1).
    x: query coordinates whose shape broadcasts with `batch`; clamped to
      [lower, upper].
    lower: scalar, first node.
    upper: scalar, last node.

  Returns:
    broadcast(batch, x.shape) interpolated values.
  """
  fn = 'lut_interpolate_curves'
  curves = _checks.as_float(curves, name='curves', fn=fn)
  x = _checks.as_float(x, name='x', fn=fn)
  if curves.ndim < 1 or curves.shape[-1] < 2:
    raise ValueError(f'{fn}: curves must have at least 2 nodes on the last '
                     f'axis, got shape {tuple(curves.shape)}.')
  try:
    jnp.broadcast_shapes(curves.shape[:-1], x.shape)
  except ValueError as error:
    raise ValueError(f'{fn}: curves batch {curves.shape[:-1]} does not '
                     f'broadcast with x of shape {tuple(x.shape)}.') from error
  return _interpolate_curves(curves, x, jnp.asarray(lower, curves.dtype),
                             jnp.asarray(upper, curves.dtype))


@jax.jit
def _interpolate_curves(curves, x, lower, upper):
  size = curves.shape[-1]
  table_batch = curves.shape[:-1]
  shape = jnp.broadcast_shapes(table_batch, x.shape)
  index, fraction = _cell(jnp.broadcast_to(x, shape), lower, upper, size)
  # Row offset of each query's own curve in the flattened batch of curves.
  rows = jnp.arange(math.prod(table_batch), dtype=jnp.int32).reshape(
      table_batch) * size
  flat_index = index + jnp.broadcast_to(rows, shape)
  flat = curves.reshape(-1)
  low = flat.at[flat_index].get(mode='promise_in_bounds')
  high = flat.at[flat_index + 1].get(mode='promise_in_bounds')
  return low + fraction * (high - low)


# --- inverse-function tables ----------------------------------------------

def _binary_search(samples: jnp.ndarray, levels: jnp.ndarray) -> jnp.ndarray:
  """Per row, the last index i with samples[i] < level (clipped to a cell)."""
  size = samples.shape[-1]
  rows = samples.shape[0]
  low = jnp.zeros((rows, levels.shape[0]), jnp.int32)
  high = jnp.full((rows, levels.shape[0]), size - 1, jnp.int32)

  def step(_, bounds):
    low, high = bounds
    middle = (low + high) // 2
    right = jnp.take_along_axis(samples, middle, axis=-1) < levels
    return jnp.where(right, middle, low), jnp.where(right, high, middle)

  low, _ = jax.lax.fori_loop(0, int(math.ceil(math.log2(size))) + 1, step,
                             (low, high))
  return jnp.clip(low, 0, size - 2)


@functools.partial(jax.jit, static_argnames=('forward', 'encode'))
def _invert_chunk(forward, encode, first_params, other_params, inputs,
                  outputs):
  """Inverse table rows for a chunk of the first parameter axis."""
  num_params = 1 + len(other_params)
  shape = lambda n, size: (size if i == n else 1 for i in range(num_params))  # noqa: E731
  params = [first_params.reshape(tuple(shape(0, first_params.shape[0])))]
  params += [p.reshape(tuple(shape(n + 1, p.shape[0])))
             for n, p in enumerate(other_params)]
  # Sparse broadcasting (as Algorithm 1's meshgrid(sparse=True)): terms that
  # depend on one parameter are evaluated on that parameter's nodes only.
  samples = forward(inputs, *[p[..., None] for p in params])
  grid_shape = jnp.broadcast_shapes(*[p.shape for p in params])
  samples = jnp.broadcast_to(samples, grid_shape + inputs.shape)
  samples = samples.reshape(-1, inputs.shape[0])
  # Blocks of rows keep each row's samples in cache through its bisection.
  block = 16
  padding = -samples.shape[0] % block
  padded = jnp.pad(samples, ((0, padding), (0, 0)), mode='edge')
  index = jax.lax.map(lambda rows: _binary_search(rows, outputs),
                      padded.reshape(-1, block, inputs.shape[0]))
  index = index.reshape(-1, outputs.shape[0])[:samples.shape[0]]
  y_low = jnp.take_along_axis(samples, index, axis=-1)
  y_high = jnp.take_along_axis(samples, index + 1, axis=-1)
  span = y_high - y_low
  weight = jnp.where(span > 0, (outputs - y_low) / jnp.where(span > 0, span, 1),
                     0.0)
  weight = jnp.clip(weight, 0.0, 1.0)
  x = inputs[index] + weight * (inputs[index + 1] - inputs[index])
  x = x.reshape(grid_shape + outputs.shape)
  if encode is not None:
    x = encode(x, *[p[..., None] for p in params])
  return x


def invert_monotone_family(
    forward: Callable[..., jax.Array], param_axes: Sequence[Axis],
    output_axis: Axis, *, input_nodes: ArrayLike,
    output_from_coordinate: Callable[[np.ndarray], np.ndarray] | None = None,
    encode: Callable[..., jax.Array] | None = None,
    progress: bool = True) -> np.ndarray:
  """Table of x = f^-1(y; p) over (p_1, ..., p_K, output coordinate).

  For every parameter node the forward function is evaluated on the dense,
  sorted `input_nodes`, and the resulting increasing curve is inverted at the
  output levels by linear interpolation between the bracketing samples
  (a vectorised binary search). Output levels below f(input_nodes[0]) get
  input_nodes[0]; above f(input_nodes[-1]), input_nodes[-1].

  Args:
    forward: f(x, *params), jnp-broadcasting, non-decreasing in x. Param k
      arrives with shape (1, .., d_k, .., 1, 1) and x with shape (d_in,).
    param_axes: K uniform axes of parameter values.
    output_axis: the uniform output-coordinate axis (the table's last axis).
    input_nodes: (d_in,) sorted dense inputs (SemiISP uses 10000 on [0, 1]).
    output_from_coordinate: maps output-axis coordinates to output values y
      (numpy, increasing); identity when None (the grid is uniform in y).
    encode: optional g(x, *params) -> stored value (same broadcasting as
      `forward`), for tables that store a smoother function of x.
    progress: show a tqdm progress bar.

  Returns:
    (d_1, ..., d_K, d_out) float32 table.
  """
  fn = 'invert_monotone_family'
  if not param_axes:
    raise ValueError(f'{fn}: need at least one parameter axis.')
  inputs = np.asarray(input_nodes, np.float32)
  if inputs.ndim != 1 or inputs.size < 2 or np.any(np.diff(inputs) <= 0):
    raise ValueError(f'{fn}: input_nodes must be a strictly increasing 1-D '
                     f'array of at least 2 values, got shape {inputs.shape}.')
  coordinates = output_axis.nodes()
  outputs = (coordinates if output_from_coordinate is None
             else np.asarray(output_from_coordinate(coordinates)))
  outputs = outputs.astype(np.float32)
  nodes = [axis.nodes().astype(np.float32) for axis in param_axes]
  rows_per_first = math.prod(axis.size for axis in param_axes[1:])
  # About 2^25 dense samples (128 MiB) per chunk of the first axis.
  chunk = max(1, min(param_axes[0].size,
                     2 ** 25 // max(1, rows_per_first * inputs.size)))
  others = [jnp.asarray(n) for n in nodes[1:]]
  # Jitted with the functions static: one compilation per family and shape.
  run = lambda first: _invert_chunk(  # noqa: E731
      forward, encode, first, others, jnp.asarray(inputs),
      jnp.asarray(outputs))
  table = np.empty(tuple(a.size for a in param_axes) + (output_axis.size,),
                   np.float32)
  starts = range(0, param_axes[0].size, chunk)
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    starts = tqdm(starts, desc='inverse LUT', unit='chunk', leave=False)
  for start in starts:
    first = nodes[0][start:start + chunk]
    count = first.shape[0]
    # Pad the last chunk so every call reuses one compiled program.
    padded = np.concatenate([first, np.repeat(first[-1:], chunk - count)])
    table[start:start + count] = np.asarray(run(padded))[:count]
  return table


def cache_directory() -> pathlib.Path:
  """Where tables are cached: $RAWJAX_CACHE_DIR, else ~/.cache/rawjax."""
  root = os.environ.get(CACHE_ENV)
  if root:
    return pathlib.Path(root).expanduser()
  xdg = os.environ.get('XDG_CACHE_HOME')
  base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / '.cache'
  return base / 'rawjax'


_MEMORY: dict[tuple[str, str], UniformLUT] = {}


def clear_lut_memory_cache() -> None:
  """Forgets the tables held in memory (the disk cache stays)."""
  _MEMORY.clear()


def cached_inverse_lut(
    forward: Callable[..., jax.Array], param_axes: Sequence[Axis],
    output_axis: Axis, *, name: str, version: int, input_nodes: ArrayLike,
    output_from_coordinate: Callable[[np.ndarray], np.ndarray] | None = None,
    encode: Callable[..., jax.Array] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True) -> UniformLUT:
  """`invert_monotone_family` as a `UniformLUT`, cached in memory and on disk.

  The cache key hashes `name`, `version`, the axes and the input nodes; the
  functions themselves cannot be hashed, so bump `version` whenever
  `forward`, `encode` or `output_from_coordinate` change. Files are
  `<cache_dir>/luts/<name>-v<version>-<key>.npz`, written to a temporary
  file and renamed, so a concurrent reader never sees half a table.

  Args:
    forward, param_axes, output_axis, input_nodes, output_from_coordinate,
    encode, progress: as for `invert_monotone_family`.
    name: the function family's name (file-name safe).
    version: the function family's version.
    cache_dir: overrides `cache_directory()`.

  Returns:
    A `UniformLUT` over (p_1, ..., p_K, output coordinate) on the device.
  """
  inputs = np.asarray(input_nodes, np.float32)
  spec = dict(format=_CACHE_FORMAT, name=name, version=int(version),
              param_axes=[list(map(float, a[:2])) + [int(a.size)]
                          for a in param_axes],
              output_axis=list(map(float, output_axis[:2])) +
              [int(output_axis.size)],
              inputs=hashlib.sha256(inputs.tobytes()).hexdigest())
  key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
  directory = pathlib.Path(cache_dir or cache_directory()) / 'luts'
  path = directory / f'{name}-v{int(version)}-{key[:16]}.npz'
  memory_key = (str(path), key)
  if memory_key in _MEMORY:
    return _MEMORY[memory_key]
  axes = list(param_axes) + [output_axis]
  lower = np.array([a.lower for a in axes], np.float32)
  upper = np.array([a.upper for a in axes], np.float32)
  values = _load(path, key, tuple(a.size for a in axes))
  if values is None:
    values = invert_monotone_family(
        forward, param_axes, output_axis, input_nodes=inputs,
        output_from_coordinate=output_from_coordinate, encode=encode,
        progress=progress)
    _save(path, values, lower, upper, key, spec)
  lut = uniform_lut(values, lower, upper)
  _MEMORY[memory_key] = lut
  return lut


def _load(path: pathlib.Path, key: str, shape) -> np.ndarray | None:
  if not path.exists():
    return None
  try:
    with np.load(path) as data:
      if str(data['key']) != key or data['values'].shape != shape:
        return None
      return data['values']
  except (OSError, ValueError, KeyError):
    return None  # unreadable or stale: rebuild and overwrite


def _save(path: pathlib.Path, values, lower, upper, key: str, spec) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=path.parent, suffix='.tmp')
  try:
    with os.fdopen(handle, 'wb') as file:
      np.savez(file, values=values, lower=lower, upper=upper,
               key=np.array(key), spec=np.array(json.dumps(spec)))
    os.replace(temporary, path)
  except BaseException:
    pathlib.Path(temporary).unlink(missing_ok=True)
    raise
