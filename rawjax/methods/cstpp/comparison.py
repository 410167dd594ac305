"""CSTPP against its baselines on one dataset and budget (issue 16).

`compare` trains each generator variant through the generic loop (same
data, seed, budget and evaluation), reads every run's validation record
from its metrics.jsonl, adds the per-patch oracle as a paired reference,
judges convergence by the protocol of docs/cstpp.md, and writes the table
and the validation curves; `launch/cstpp_compare.py` is its command line.
"""

from __future__ import annotations

import functools
import os
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from rawjax import baselines
from rawjax.eval import figures, plotting
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.eval import scoring
from rawjax.eval import write_results
from rawjax.methods.cstpp import evaluation
from rawjax.train import config as config_lib
from rawjax.train import loop

__all__ = ['REFERENCES', 'VARIANTS', 'compare', 'converged', 'late_mean',
           'patch_oracle_rows']

# Variant name -> (its label, the config changes that make it).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    'patch': ('CSTPP, patch-wise transform (ours)', {}),
    'global': ('CSTPP backbone, uniform transform',
               {'model.transform': 'global'}),
    'resnet': ('CycleGAN ResNet generator',
               {'model.generator': 'resnet', 'model.sharing': 'none'}),
}
# Reference rows every run's evaluation scores (taken from the first run)
# and the per-patch oracle of `patch_oracle_rows`.
REFERENCES = {
    'identity': 'Identity (no mapping)',
    'global_3x3': 'Paired 3x3 (per anchor chart)',
    'global_3x3_pooled': 'Paired 3x3 (all anchor pixels)',
    'oracle_3x3': 'Oracle 3x3 per test pair',
    'oracle_patch_3x3': 'Oracle 3x3 per 16x16 patch',
}
_METRICS = evaluation.METRICS
_DIGITS = {'psnr': 2, 'ssim': 4, 'mae': 4, 'delta_e2000': 3, 'kl': 4,
           'chart_mae': 4}
_CYCLE = 'train/generator_step/loss_cycle'


def _eval_records(records: Sequence[Mapping[str, float]]
                  ) -> list[Mapping[str, float]]:
  return [r for r in records if 'eval/a_to_b/ours/psnr' in r]


def converged(records: Sequence[Mapping[str, float]], *, window: int = 1000,
              psnr_tolerance: float = 0.3, cycle_tolerance: float = 0.05,
              cycle_average: int = 250) -> dict[str, Any]:
  """The convergence rule of docs/cstpp.md's protocol, on one run's records.

  Converged iff, over the last `window` iterations, the validation PSNR of
  both directions moved by less than `psnr_tolerance` dB between
  successive evaluations, and the cycle loss averaged over `cycle_average`
  iterations changed by less than `cycle_tolerance` (relative) between the
  start and the end of that window.

  Args:
    records: `rawjax.eval.figures.read_metrics` of the run.

  Returns:
    {'converged': bool, 'max_psnr_move': dB, 'cycle_change': relative}.
  """
  evals = _eval_records(records)
  if len(evals) < 2:
    return {'converged': False, 'max_psnr_move': float('nan'),
            'cycle_change': float('nan')}
  last = evals[-1]['step']
  recent = [r for r in evals if r['step'] >= last - window]
  moves = [abs(b[f'eval/{d}/ours/psnr'] - a[f'eval/{d}/ours/psnr'])
           for a, b in zip(recent, recent[1:]) for d in ('a_to_b', 'b_to_a')]
  move = max(moves) if moves else float('nan')

  def cycle_mean(end):
    values = [r[_CYCLE] for r in records
              if _CYCLE in r and end - cycle_average < r['step'] <= end]
    return float(np.mean(values)) if values else float('nan')

  start, end = cycle_mean(last - window), cycle_mean(last)
  change = abs(end - start) / start if start else float('nan')
  ok = bool(moves) and move < psnr_tolerance and change < cycle_tolerance
  return {'converged': ok, 'max_psnr_move': float(move),
          'cycle_change': float(change)}


def late_mean(records: Sequence[Mapping[str, float]], *, count: int = 3
              ) -> dict[str, dict[str, float]]:
  """Each direction's scores averaged over the run's last `count` evaluations.

  Beside the last evaluation (the protocol's reported figure) it shows how
  much of a difference between runs is the evaluation-to-evaluation swing
  of an unconverged GAN.

  Returns:
    {'a_to_b' | 'b_to_a': {metric: mean}, 'steps': [the steps averaged]}.
  """
  evals = _eval_records(records)[-count:]
  out: dict[str, Any] = {'steps': [int(r['step']) for r in evals]}
  for tag, _, _ in raw2raw_eval.DIRECTIONS:
    out[tag] = {m: float(np.mean([r[f'eval/{tag}/ours/{m}'] for r in evals]))
                for m in _METRICS if evals}
  return out


@functools.partial(jax.jit, static_argnames='patch')
def _patch_oracle(source, target, *, patch):
  return baselines.patch_oracle(source, target, patch=patch)


def patch_oracle_rows(config, *, patch: int = 16) -> dict[str, dict]:
  """The per-patch 3x3 oracle on the test pairs, both directions.

  Each `patch` x `patch` (packed pixels) square of a test input gets its
  own least-squares 3x3 to the same square of its target
  (`rawjax.baselines.patch_oracle`): the reference of what a spatially
  varying linear transform could reach at that scale, seeing the target.

  Returns:
    {'a_to_b' | 'b_to_a': scores summary}, scored as `evaluation.evaluate`
    scores its rows.
  """
  _, _, tests, _ = evaluation.load_test_pairs(config)
  view = evaluation.viewed(config, tests)
  rows = {}
  for tag, s, t in raw2raw_eval.DIRECTIONS:
    mapped = [np.asarray(_patch_oracle(p['images'][s], p['images'][t],
                                       patch=patch)) for p in tests]
    in_view = [np.asarray(evaluation.model_view(config, x)) for x in mapped]
    rows[tag] = scoring.summarize([evaluation.score_pairs(in_view, view, t)],
                                  _METRICS)
  return rows


def compare(config, workdir: str | os.PathLike[str], *,
            variants: Sequence[str] = ('patch', 'global', 'resnet'),
            progress: bool = True) -> dict[str, Any]:
  """Trains each variant (same data, seed, budget), then the table.

  Runs resume from WORKDIR/<variant> (a finished run is only evaluated
  again). The reported scores are those of each run's last evaluation
  (no checkpoint is picked by its test score).

  Args:
    config: a cycle_gan config (configs/raw2raw_cstpp.py); options that
      only one variant reads (e.g. model.resnet_features) may be set on it.
    workdir: the comparison's folder.
    variants: keys of `VARIANTS`, in the order they train.
    progress: progress bars.

  Returns:
    The results (also WORKDIR/results.json, results.md, curves.png).

  Raises:
    ValueError: an unknown variant.
  """
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    raise ValueError(f'unknown variants {unknown}; known: {list(VARIANTS)}.')
  workdir = pathlib.Path(workdir).expanduser()
  runs, seconds = {}, {}
  for name in variants:
    run_config = config_lib.with_changes(config, VARIANTS[name][1])
    with run_config.unlocked():
      run_config.logging.progress_bar = progress
    start = time.perf_counter()
    loop.train_and_evaluate(run_config, workdir / name)
    seconds[name] = time.perf_counter() - start
    runs[name] = figures.read_metrics(workdir / name / 'metrics.jsonl')
  first = _eval_records(runs[variants[0]])[-1]
  oracle = patch_oracle_rows(config)
  directions = {}
  for tag, _, _ in raw2raw_eval.DIRECTIONS:
    rows = {key: {m: first[f'eval/{tag}/{key}/{m}'] for m in _METRICS}
            for key in REFERENCES if key != 'oracle_patch_3x3'}
    rows['oracle_patch_3x3'] = oracle[tag]
    for name in variants:
      last = _eval_records(runs[name])[-1]
      rows[name] = {m: last[f'eval/{tag}/ours/{m}'] for m in _METRICS}
    directions[tag] = {'title': tag.replace('_to_', ' -> ').upper(),
                       'rows': rows}
  results = {
      'steps': int(first['step']), 'variants': list(variants),
      'directions': directions,
      'convergence': {n: converged(r) for n, r in runs.items()},
      'late_mean': {n: late_mean(r) for n, r in runs.items()},
      'seconds': seconds,
  }
  labels = {**REFERENCES, **{n: VARIANTS[n][0] for n in variants}}
  write_results(workdir, results, _markdown(results, labels))
  curves_figure(runs, labels).save(workdir / 'curves.png')
  return results


def _markdown(results: Mapping[str, Any], labels: Mapping[str, str]) -> str:
  lines = ['# CSTPP against its baselines (paired test split)', '',
           f'Every variant trains {results["steps"]} iterations on the same '
           "data with the same seed; scores are each run's last evaluation; "
           'the oracles see the target.', '']
  lines += raw2raw_eval.direction_table(
      results['directions'], metrics=_METRICS,
      headers=('PSNR', 'SSIM', 'MAE', 'DeltaE00', 'KL', 'chart MAE'),
      digits=_DIGITS, labels=labels)
  lines += ['', '| Variant | converged | max PSNR move, last 1,000 it. (dB) '
            '| cycle loss change | wall of this invocation (s) |',
            '|---|---|---|---|---|']
  for name, c in results['convergence'].items():
    lines.append(f'| {labels[name]} | {"yes" if c["converged"] else "no"} | '
                 f'{c["max_psnr_move"]:.2f} | {100 * c["cycle_change"]:.1f} %'
                 f' | {results["seconds"][name]:.0f} |')
  late = results['late_mean']
  steps = next(iter(late.values()))['steps']
  lines += ['', f'Mean of the last {len(steps)} evaluations (steps '
            f'{", ".join(map(str, steps))}), against the last one:', '',
            '| Variant | A -> B PSNR | A -> B KL | B -> A PSNR | B -> A KL |',
            '|---|---|---|---|---|']
  for name, mean in late.items():
    cells = []
    for tag in ('a_to_b', 'b_to_a'):
      last = results['directions'][tag]['rows'][name]
      cells += [f'{mean[tag]["psnr"]:.2f} (last {last["psnr"]:.2f})',
                f'{mean[tag]["kl"]:.4f} (last {last["kl"]:.4f})']
    lines.append(f'| {labels[name]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def curves_figure(runs: Mapping[str, Sequence[Mapping[str, float]]],
                  labels: Mapping[str, str]):
  """Validation PSNR and KL of both directions and the cycle loss, a line
  per variant, against the iteration."""
  charts = []
  for tag in ('a_to_b', 'b_to_a'):
    for metric, name in (('psnr', 'PSNR (dB)'), ('kl', 'histogram KL')):
      series = []
      for variant, records in runs.items():
        evals = _eval_records(records)
        series.append(plotting.Series(
            labels[variant], [r['step'] for r in evals],
            [r[f'eval/{tag}/ours/{metric}'] for r in evals]))
      charts.append(plotting.line_chart(
          series, title=f'{tag.replace("_to_", " -> ").upper()}: {name}',
          xlabel='iteration').image)
  series = []
  for variant, records in runs.items():
    points = [(r['step'], r[_CYCLE]) for r in records if _CYCLE in r]
    series.append(plotting.Series(labels[variant], [p[0] for p in points],
                                  [p[1] for p in points]))
  charts.append(plotting.line_chart(series, title='cycle loss (train)',
                                    xlabel='iteration', log_y=True).image)
  return plotting.tile(charts, columns=2,
                       title='CSTPP and its baselines: validation curves')
