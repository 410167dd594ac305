"""Trace-time validation of public-function arguments.

Shapes and dtypes are static under `jit`, so these checks run once per trace
and raise a `ValueError` that names the function and the problem instead of
letting a shape error surface deep inside XLA.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike


def as_float(x: ArrayLike, *, name: str, fn: str) -> jnp.ndarray:
  """Returns `x` as a float array (float32 unless already floating)."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
      raise TypeError(f'{fn}: {name} must be numeric, got dtype {x.dtype}.')
    x = x.astype(jnp.float32)
  return x


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
