"""LiteISPNet speed, JAX beside PyTorch: forward and train step.

  * forward: LiteISPNet (full width, 9.04 M parameters) on a 448x448 output
    (packed 224x224x4), batch `--batch`, jitted; the same for the
    independent PyTorch implementation (tests/torch_reference) under
    `torch.no_grad()` when torch is installed, and their time ratio;
  * train step: forward + backward + Adam update of LiteISPNet with the L1
    + 0.15 (1 - SSIM) terms of the method (the GCM, the flow and the VGG term
    are left out so both frameworks do the same work; PyTorch computes the
    same SSIM with its depthwise-conv formulation).

Tiled full-frame inference has its own script, `tiled_inference.py`.
Compile time is reported apart from run time (first call - median of later
calls). The machine is shared; timings are noisy.

    python benchmarks/train_step_liteisp.py [--batch 1] [--repeats 3]
        [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/train_step_liteisp.json).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import models
from rawjax.methods.liteisp import objective
from rawjax.data.datasets.zrr import coordinate_map
from _timing import time_call  # benchmarks/_timing.py

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _random_params(model, shape):
  """U(+-0.05) parameters of the right shapes without compiling `init`.

  XLA's CPU compiler needs minutes for the 9 M-parameter random init on a
  busy 2-core machine; the timings do not depend on the values.
  """
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), jnp.zeros(shape, jnp.float32)))['params']
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: jnp.asarray(
      rng.uniform(-0.05, 0.05, s.shape).astype(np.float32)), shapes)


def _jax_numbers(batch: int, repeats: int) -> dict[str, float]:
  model = models.LiteISPNet()
  raw = jnp.asarray(np.random.default_rng(0).uniform(
      0, 1, (batch, 224, 224, 4)), jnp.float32)
  target = jnp.asarray(np.random.default_rng(1).uniform(
      0, 1, (batch, 448, 448, 3)), jnp.float32)
  params = _random_params(model, raw.shape)
  forward = jax.jit(lambda p, r: model.apply({'params': p}, r))
  tx = optax.adam(1e-4)
  opt_state = tx.init(params)

  @jax.jit
  def step(p, o, r, t):
    def loss(q):
      out = model.apply({'params': q}, r)
      return (objective.masked_l1_loss(prediction=out, target=t) +
              0.15 * objective.ssim_loss(prediction=out, target=t))
    value, grads = jax.value_and_grad(loss)(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, value

  f_first, f_run = time_call(lambda: forward(params, raw), repeats)
  s_first, s_run = time_call(lambda: step(params, opt_state, raw, target),
                             repeats)
  return {'forward_s': f_run, 'forward_compile_s': f_first - f_run,
          'train_step_s': s_run, 'train_step_compile_s': s_first - s_run}


def _torch_numbers(batch: int, repeats: int) -> dict[str, float] | None:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  sys.path.insert(0, str(ROOT / 'tests'))
  from torch_reference.liteisp_torch import LiteISPNetTorch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  net = LiteISPNetTorch()
  raw = torch.rand(batch, 4, 224, 224)
  coord = torch.from_numpy(coordinate_map(224, 224).transpose(2, 0, 1).copy()
                           )[None].repeat(batch, 1, 1, 1)
  target = torch.rand(batch, 3, 448, 448)
  t = np.arange(11) - 5
  g = np.exp(-t**2 / (2 * 1.5**2))
  window = torch.from_numpy((np.outer(g, g) / np.outer(g, g).sum()).astype(
      np.float32))[None, None].repeat(3, 1, 1, 1)

  def ssim(a, b):
    conv = lambda z: torch.nn.functional.conv2d(z, window, padding=5,  # noqa: E731
                                                groups=3)
    ma, mb = conv(a), conv(b)
    va, vb, vab = conv(a * a) - ma**2, conv(b * b) - mb**2, conv(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * ma * mb + c1) * (2 * vab + c2)) /
            ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean()

  opt = torch.optim.Adam(net.parameters(), lr=1e-4)

  def forward():
    with torch.no_grad():
      return net(raw, coord)

  def step():
    opt.zero_grad()
    out = net(raw, coord)
    loss = (out - target).abs().mean() + 0.15 * (1 - ssim(out, target))
    loss.backward()
    opt.step()
    return loss

  def timed(fn):
    fn()  # warm-up (allocator, oneDNN primitive caches)
    runs = []
    for _ in range(repeats):
      start = time.perf_counter()
      fn()
      runs.append(time.perf_counter() - start)
    return float(np.median(runs))

  return {'forward_s': timed(forward), 'train_step_s': timed(step),
          'threads': torch.get_num_threads(), 'version': torch.__version__}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--json', default=str(
      ROOT / 'benchmarks' / 'results' / 'train_step_liteisp.json'))
  args = parser.parse_args(argv)

  path = pathlib.Path(args.json)
  results: dict[str, Any] = {
      'machine': {'platform': platform.platform(),
                  'jax': jax.__version__, 'devices': str(jax.devices())},
      'batch': args.batch, 'output_size': [448, 448]}
  results['jax'] = _jax_numbers(args.batch, args.repeats)
  results['torch'] = _torch_numbers(args.batch, args.repeats)
  if results['torch']:
    results['ratio_jax_over_torch'] = {
        k: results['jax'][k] / results['torch'][k]
        for k in ('forward_s', 'train_step_s')}

  lines = [f'LiteISPNet (9.04 M params), batch {args.batch}, 448x448 output',
           '', '| | JAX (s) | JAX compile (s) | PyTorch (s) | JAX / PyTorch |',
           '|---|---|---|---|---|']
  for key, name in (('forward_s', 'forward'), ('train_step_s', 'train step')):
    jax_s = results['jax'][key]
    compile_s = results['jax'][key[:-2] + '_compile_s']
    if results['torch']:
      torch_s = f'{results["torch"][key]:.3f}'
      ratio = f'{results["ratio_jax_over_torch"][key]:.2f}'
    else:
      torch_s = ratio = 'n/a (torch not installed)'
    lines.append(f'| {name} | {jax_s:.3f} | {compile_s:.1f} | {torch_s} | '
                 f'{ratio} |')
  print('\n'.join(lines))
  print(json.dumps(results, indent=1))
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(results, indent=1) + '\n')
  return results


if __name__ == '__main__':
  main()
