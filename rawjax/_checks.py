"""Trace-time validation of public-function arguments.

Shapes and dtypes are static under `jit`, so these checks run once per trace
and raise a `ValueError` that names the function and the problem instead of
letting a shape error surface deep inside XLA. Values are checked too when
they are concrete (Python numbers, NumPy arrays, JAX arrays outside `jit`):
`check_values` and its wrappers skip traced values, whose validity the
calling function documents as a run-time behaviour (usually a NaN result).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def as_float(x: ArrayLike, *, name: str, fn: str,
             integers: bool = True) -> jnp.ndarray:
  """Returns `x` as a float array (float32 unless already floating).

  Args:
    x: the argument.
    name, fn: the argument's and the function's names, for the message.
    integers: whether integer and bool arrays are accepted (converted to
      float32 as they are). Image arguments of functions that expect [0, 1]
      floats pass False: a uint8 image would silently be read as 0..255.
  """
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
      raise TypeError(f'{fn}: {name} must be numeric, got dtype {x.dtype}.')
    if not integers:
      raise TypeError(
          f'{fn}: {name} must be a floating-point array (values in [0, 1] '
          f'or linear light), got dtype {x.dtype}; convert explicitly, e.g. '
          f'x / 255 for 8-bit images.')
    x = x.astype(jnp.float32)
  return x


def concrete(x: ArrayLike) -> np.ndarray | None:
  """`x` as a NumPy array when its value is known now, None when traced."""
  if isinstance(x, jax.core.Tracer):
    return None
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError,
          jax.errors.ConcretizationTypeError, TypeError):
    return None


def check_values(x: ArrayLike, ok: Callable[[np.ndarray], np.ndarray], *,
                 name: str, fn: str, rule: str) -> None:
  """Raises ValueError when a concrete `x` breaks `rule` (`ok` is False).

  Traced values are not checked (their values are unknown at trace time).
  """
  value = concrete(x)
  if value is None:
    return
  with np.errstate(invalid='ignore'):
    good = np.asarray(ok(value.astype(np.float64)))
  if not np.all(good):
    shown = value.tolist()
    if value.size > 8:
      bad = value[~np.broadcast_to(good, value.shape)].ravel()[:4]
      shown = f'{bad.tolist()} among others'
    raise ValueError(f'{fn}: {name} must be {rule}, got {shown}.')


def check_positive(x: ArrayLike, *, name: str, fn: str) -> None:
  """A concrete `x` must be finite and > 0 everywhere."""
  check_values(x, lambda v: np.isfinite(v) & (v > 0), name=name, fn=fn,
               rule='finite and > 0')


def check_finite(x: ArrayLike, *, name: str, fn: str) -> None:
  """A concrete `x` must be finite everywhere."""
  check_values(x, np.isfinite, name=name, fn=fn, rule='finite')


def check_below(low: ArrayLike, high: ArrayLike, *, names: str,
                fn: str) -> None:
  """Concrete `low` < `high` elementwise (after broadcasting the caller set).

  `names` is 'black_level and white_level' style.
  """
  lo, hi = concrete(low), concrete(high)
  if lo is None or hi is None:
    return
  n1, n2 = names.split(' and ')
  with np.errstate(invalid='ignore'):
    good = np.asarray(lo, np.float64) < np.asarray(hi, np.float64)
  if not np.all(good):
    raise ValueError(f'{fn}: {n1} must be below {n2} (finite), got {n1} '
                     f'{np.asarray(lo).tolist()} and {n2} '
                     f'{np.asarray(hi).tolist()}.')


def check_min_rank(x: jnp.ndarray, rank: int, *, name: str, fn: str,
                   layout: str) -> None:
  if x.ndim < rank:
    raise ValueError(
        f'{fn}: {name} must have layout {layout} (at least {rank} dims), '
        f'got shape {tuple(x.shape)}.')


def check_channels(x: jnp.ndarray, channels: int | Sequence[int], *,
                   name: str, fn: str) -> None:
  allowed = (channels,) if isinstance(channels, int) else tuple(channels)
  if x.ndim < 1 or x.shape[-1] not in allowed:
    raise ValueError(
        f'{fn}: {name} must have {" or ".join(map(str, allowed))} channels '
        f'on the last axis, got shape {tuple(x.shape)}.')


def check_even_hw(x: jnp.ndarray, *, name: str, fn: str,
                  hw_axes: tuple[int, int] = (-2, -1)) -> None:
  h, w = x.shape[hw_axes[0]], x.shape[hw_axes[1]]
  if h % 2 or w % 2:
    raise ValueError(
        f'{fn}: {name} must have even height and width for a 2x2 CFA, '
        f'got {h}x{w} (shape {tuple(x.shape)}).')


def check_same_shape(a: jnp.ndarray, b: jnp.ndarray, *, names: str,
                     fn: str) -> None:
  if a.shape != b.shape:
    raise ValueError(
        f'{fn}: {names} must have the same shape, got {tuple(a.shape)} and '
        f'{tuple(b.shape)}.')
