"""Inverse gamma tone map (f_GM^-1) on the paper's 60 x 30 x 30 x 512 LUT.

Time per 640 x 480 x 3 image for SemiISP's LUT inverse: rawjax jitted (one
parameter set per image, and per-pixel parameters), against SemiISP's own
recipe (Algorithm 1: scipy's RegularGridInterpolator at (p_g1, p_g2, k, y)
for every pixel) and against jax.scipy's RegularGridInterpolator, jitted,
all on the same table and points, plus the LUT build time and the round-trip
accuracy |f(f^-1(y)) - y| (the paper: mean 1.1e-5, max 6.5e-5).

    python benchmarks/lut.py [--repeats 10] [--json PATH]

Compile time is reported apart from run time (first call minus the median).
Prints a markdown table and JSON (also written to benchmarks/results/lut.json).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.interpolate import RegularGridInterpolator as JaxRGI
from scipy.interpolate import RegularGridInterpolator

import _timing  # benchmarks/_timing.py
from _timing import time_call
from rawjax.isp import lut as lut_lib, pqdynamic as pq

HEIGHT, WIDTH = 480, 640


def _accuracy(table, rng) -> dict:
  """Round-trip errors at 300k random points inside the grid (LUT only and
  with Newton steps), measured with a float64 forward."""
  n = 100000
  params = pq.MixtureParams(*(rng.uniform(*r, (n, 1, 3)).astype(np.float32)
                              for r in (pq.DEFAULT_RANGES.gamma,
                                        pq.DEFAULT_RANGES.gamma, (0, 1))))
  y = rng.random((n, 1, 3), np.float32)
  p1, p2, k = (np.float64(v) for v in params)
  out = {}
  for steps in (0, 1, 2):
    inverse = jax.jit(lambda y, p, t, s=steps: pq.inverse_gamma_tone_map(
        y, p, lut=t, newton_steps=s, per_pixel=True))
    x = np.asarray(inverse(y, params, table), np.float64)
    error = np.abs(k * x ** (1 / p1) + (1 - k) * x ** (1 / p2) - y)
    out[f'newton_{steps}'] = dict(mean=float(error.mean()),
                                  max=float(error.max()))
  return out


def main() -> None:
  parser = _timing.argument_parser(__doc__, 'lut', repeats=10)
  parser.add_argument('--scipy-repeats', type=int, default=2)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as cache:
    start = time.perf_counter()
    table = pq.gamma_tone_map_lut(cache_dir=cache, progress=True)
    jax.block_until_ready(table.values)
    build_s = time.perf_counter() - start
    lut_lib.clear_lut_memory_cache()
    start = time.perf_counter()
    table = pq.gamma_tone_map_lut(cache_dir=cache, progress=False)
    jax.block_until_ready(table.values)
    load_s = time.perf_counter() - start

  rng = np.random.default_rng(0)
  image = jnp.asarray(rng.random((HEIGHT, WIDTH, 3), np.float32))
  params = pq.MixtureParams(*(jnp.asarray(rng.uniform(*r, 3), jnp.float32)
                              for r in (pq.DEFAULT_RANGES.gamma,
                                        pq.DEFAULT_RANGES.gamma, (0, 1))))
  per_pixel = pq.MixtureParams(*(jnp.broadcast_to(v, image.shape)
                                 for v in params))
  rows = []

  def add(name, fn, note=''):
    first, run = time_call(fn, args.repeats)
    rows.append(dict(name=name, compile_s=max(first - run, 0.0), run_s=run,
                     note=note))
    return fn()

  reference = None
  for steps in (0, 1, 2):
    inverse = jax.jit(lambda y, p, t, s=steps: pq.inverse_gamma_tone_map(
        y, p, lut=t, newton_steps=s))
    out = add(f'rawjax, per-image parameters, {steps} Newton',
              lambda f=inverse: f(image, params, table),
              'separable: 3-D lookup per channel, 2 gathers per pixel')
    reference = out if steps == 0 else reference
  for steps in (0, 1):
    inverse = jax.jit(lambda y, p, t, s=steps: pq.inverse_gamma_tone_map(
        y, p, lut=t, newton_steps=s, per_pixel=True))
    add(f'rawjax, per-pixel parameters, {steps} Newton',
        lambda f=inverse: f(image, per_pixel, table),
        'full 4-D lookup: 16 gathers per pixel')

  # The same lookup done the paper's way: 4-D points for every pixel, then
  # our decoding x = v^(1/E) (identical in all three; timed with it).
  grid = [np.linspace(lo, hi, d) for lo, hi, d in
          zip(np.asarray(table.lower, np.float64),
              np.asarray(table.upper, np.float64), table.values.shape)]
  exponent = np.asarray(params.p1) ** np.asarray(params.k) * np.asarray(
      params.p2) ** (1 - np.asarray(params.k))
  host = np.asarray(image)
  points = np.stack(np.broadcast_arrays(
      *(np.asarray(v) for v in params), np.sqrt(host)), -1).reshape(-1, 4)
  interpolator = RegularGridInterpolator(grid, np.asarray(table.values))

  def scipy_inverse():
    v = interpolator(points).reshape(host.shape)
    return np.clip(v, 0, 1) ** exponent

  first, run = time_call(scipy_inverse, args.scipy_repeats)
  rows.append(dict(name='scipy RegularGridInterpolator (SemiISP Alg. 1)',
                   compile_s=0.0, run_s=run, note='float64, per pixel'))
  scipy_out = scipy_inverse()

  jax_grid = tuple(jnp.asarray(g, jnp.float32) for g in grid)

  @jax.jit
  def jax_scipy_inverse(y, p, values):
    pts = jnp.stack(jnp.broadcast_arrays(p.p1, p.p2, p.k, jnp.sqrt(y)), -1)
    v = JaxRGI(jax_grid, values, method='linear')(pts.reshape(-1, 4))
    e = p.p1 ** p.k * p.p2 ** (1 - p.k)
    return jnp.clip(v.reshape(y.shape), 0, 1) ** e

  add('jax.scipy RegularGridInterpolator, jitted',
      lambda: jax_scipy_inverse(image, params, table.values),
      'searchsorted per axis')
  jax_scipy_out = jax_scipy_inverse(image, params, table.values)

  ours = next(r for r in rows if r['name'].startswith(
      'rawjax, per-image parameters, 0'))
  scipy_row = next(r for r in rows if r['name'].startswith('scipy'))
  jax_row = next(r for r in rows if r['name'].startswith('jax.scipy'))
  for row in rows:
    row['speedup_vs_scipy'] = scipy_row['run_s'] / row['run_s']
  accuracy = _accuracy(table, np.random.default_rng(1))
  report = dict(
      benchmark='lut', image=[HEIGHT, WIDTH, 3],
      lut_shape=list(table.values.shape),
      lut_mb=table.values.size * 4 / 2 ** 20,
      build_s=build_s, load_from_disk_s=load_s, repeats=args.repeats,
      jax=jax.__version__, machine=platform.machine(),
      cpu_count=os.cpu_count(), load_average=os.getloadavg()[0],
      max_abs_diff_vs_scipy=float(np.abs(np.asarray(reference) -
                                         scipy_out).max()),
      max_abs_diff_vs_jax_scipy=float(jnp.abs(reference -
                                              jax_scipy_out).max()),
      speedup_vs_scipy=scipy_row['run_s'] / ours['run_s'],
      speedup_vs_jax_scipy=jax_row['run_s'] / ours['run_s'],
      round_trip=accuracy, rows=rows)
  args.json.parent.mkdir(parents=True, exist_ok=True)
  args.json.write_text(json.dumps(report, indent=2))

  print(f'# lut: inverse gamma tone map, {WIDTH}x{HEIGHT}x3 image, LUT '
        f'{"x".join(map(str, table.values.shape))} '
        f'({report["lut_mb"]:.0f} MB)\n')
  print(f'LUT build {build_s:.2f} s (vectorised, once; then cached), load '
        f'from disk {load_s:.2f} s; load average {report["load_average"]:.1f} '
        f'on {report["cpu_count"]} CPUs\n')
  print('| method | compile (s) | run (ms) | vs scipy | note |')
  print('|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['name']} | {r['compile_s']:.2f} | {1e3 * r['run_s']:.1f} | "
          f"{r['speedup_vs_scipy']:.0f}x | {r['note']} |")
  print('\n| round trip abs(f(f^-1(y)) - y) | mean | max |')
  print('|---|---|---|')
  print('| paper (CuPy RegularGridInterpolator) | 1.1e-05 | 6.5e-05 |')
  for key, value in accuracy.items():
    print(f"| rawjax, {key.replace('newton_', '')} Newton steps | "
          f"{value['mean']:.1e} | "
          f"{value['max']:.1e} |")
  print(f"\nrawjax vs scipy on the same table: max |diff| "
        f"{report['max_abs_diff_vs_scipy']:.1e}; vs jax.scipy "
        f"{report['max_abs_diff_vs_jax_scipy']:.1e}")
  print(f"speed-up (per-image parameters, LUT only): "
        f"{report['speedup_vs_scipy']:.0f}x vs scipy, "
        f"{report['speedup_vs_jax_scipy']:.1f}x vs jitted jax.scipy")
  print(f'JSON: {args.json}')
  print(json.dumps(report))


if __name__ == '__main__':
  main()
