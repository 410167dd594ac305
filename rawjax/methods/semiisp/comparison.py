"""The comparison of Tables 2/3: supervised-only vs pseudo-data (+ fine-tuning).

`compare` trains every row with one iteration budget per target model
(phase 2 + fine-tuning = the supervised-only baseline's steps) through the
generic loop and writes the table; `launch/semiisp_compare.py` is its
command line.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from rawjax.eval import markdown_table, plotting, write_results
from rawjax.eval.figures import read_metrics
from rawjax.methods.semiisp.config import phase_config
from rawjax.methods.semiisp.data import dataset_root
from rawjax.train import loop

__all__ = ['ROWS', 'compare', 'curves_figure', 'validation_curve']

# Row key of results['targets'][target] -> its label in the table.
ROWS = {
    'supervised': 'Supervised only',
    'one_to_many': 'SemiISP (phase 2)',
    'one_to_many_ft': 'SemiISP + fine-tuning',
    'deterministic': 'w/o one-to-many (phase 2)',
    'deterministic_ft': 'w/o one-to-many + fine-tuning',
    'upi': 'UPI pseudo-data (phase 2)',
    'upi_ft': 'UPI pseudo-data + fine-tuning',
    'real_pairs': "Real-pairs ceiling (+ unlabelled scenes' raws)",
}


def _latest_results(workdir: pathlib.Path) -> dict[str, Any]:
  runs = sorted((workdir / 'eval').glob('step_*/results.json'))
  if not runs:
    raise FileNotFoundError(f'no evaluation results under {workdir}/eval.')
  return json.loads(runs[-1].read_text())


def compare(config, workdir: str | os.PathLike[str], *,
            targets: Sequence[str] = ('unet', 'pqdynamic_net'),
            generators: Sequence[str] = ('one_to_many', 'upi'),
            ceiling: bool = False,
            progress: bool = True) -> dict[str, Any]:
  """Runs the phases for Tables 2/3: same iteration budget for every row.

  For every target in `targets` (a key of `config.target_models`: the
  model options, with 'name' the registered model, default the key): the
  supervised-only baseline (`supervised.num_steps` steps), and for every
  pseudo-data generator phase 2 (`semi.num_steps`) then fine-tuning
  (`supervised.finetune_steps`; the two add up to the baseline's budget).
  Phase 1 (f_ISP) runs once and serves every f_ISP-based generator. With
  `ceiling`, a last row per target: the real-pairs ceiling, supervised on
  the labelled pairs plus the unlabelled scenes' true raws
  (`data.unlabelled_pairs`; simulated data only) for the same budget, the
  score pseudo-data would reach if they were as good as real pairs. Runs
  resume from their workdirs (WORKDIR/isp, WORKDIR/<target>/<row>).

  Writes workdir/results.json and results.md (PSNR / SSIM on the held-out
  test pairs, wall-clock seconds per run) and returns the results.

  Raises:
    ValueError: the budgets differ, or a target has no options.
  """
  workdir = pathlib.Path(workdir).expanduser()
  budget = config.supervised.num_steps
  if config.semi.num_steps + config.supervised.finetune_steps != budget:
    raise ValueError(
        f'unequal budgets: semi.num_steps ({config.semi.num_steps}) + '
        f'supervised.finetune_steps ({config.supervised.finetune_steps}) '
        f'must equal supervised.num_steps ({budget}).')
  seconds: dict[str, float] = {}

  def run(name, run_config):
    start = time.perf_counter()
    with run_config.unlocked():
      run_config.logging.progress_bar = progress
    loop.train_and_evaluate(run_config, workdir / name)
    seconds[name] = time.perf_counter() - start
    return _latest_results(workdir / name)

  results = {'budget_steps': budget, 'dataset': str(dataset_root(config)),
             'targets': {}}
  isp_dir = workdir / 'isp'
  if any(g != 'upi' for g in generators):
    results['isp'] = run('isp', phase_config(config, 'isp'))
  for target in targets:
    if target not in config.target_models:
      raise ValueError(f'no options for target {target!r} in '
                       f'config.target_models ({list(config.target_models)}).')
    options = dict(config.target_models[target])
    model = ml_collections.ConfigDict(dict(name=options.pop('name', target),
                                           **options))
    rows = {}
    rows['supervised'] = run(f'{target}/supervised', _with_model(
        phase_config(config, 'supervised'), model))
    for generator in generators:
      semi_dir = f'{target}/{generator}'
      rows[generator] = run(semi_dir, _with_model(phase_config(
          config, 'semi', **{'pseudo.generator': generator,
                             'pseudo.isp_workdir': str(isp_dir)}), model))
      rows[f'{generator}_ft'] = run(f'{semi_dir}_ft', _with_model(
          phase_config(config, 'supervised', **{
              'pseudo.generator': generator,
              'pseudo.isp_workdir': str(isp_dir),
              'supervised.init_from': str(workdir / semi_dir)}), model))
    if ceiling:
      rows['real_pairs'] = run(f'{target}/real_pairs', _with_model(
          phase_config(config, 'supervised', **{'data.unlabelled_pairs': True}),
          model))
    results['targets'][target] = {
        k: {m: v[m] for m in ('psnr', 'ssim', 'step')} for k, v in
        rows.items()}
  results['seconds'] = seconds
  results['total_seconds'] = float(sum(seconds.values()))
  write_results(workdir, results, _comparison_markdown(results))
  curves_figure(workdir, results, phase2_steps=config.semi.num_steps).save(
      workdir / 'curves.png')
  return results


def validation_curve(run_dir: str | os.PathLike[str], *, offset: int = 0
                     ) -> tuple[list[int], list[float]]:
  """(steps, PSNRs) of one run's evaluations in its metrics.jsonl.

  `offset` is added to the steps: a fine-tuning run continues its phase-2
  run, so its curve starts where that one ends.
  """
  records = read_metrics(pathlib.Path(run_dir) / 'metrics.jsonl')
  evals = [r for r in records if 'eval/psnr' in r]
  return ([int(r['step']) + offset for r in evals],
          [float(r['eval/psnr']) for r in evals])


def curves_figure(workdir: str | os.PathLike[str], results: Mapping[str, Any],
                  *, phase2_steps: int):
  """Test PSNR against the iteration, a chart per target, a line per row.

  Phase 2 and its fine-tuning make one line (the fine-tuning steps after
  `phase2_steps`), so every line spans the same budget as the
  supervised-only one beside it.
  """
  workdir = pathlib.Path(workdir)
  charts = []
  for target, rows in results['targets'].items():
    series = []
    for key in rows:
      if key.endswith('_ft'):
        continue
      steps, psnrs = validation_curve(workdir / target / key)
      if f'{key}_ft' in rows:
        ft_steps, ft_psnrs = validation_curve(workdir / target / f'{key}_ft',
                                              offset=phase2_steps)
        steps, psnrs = steps + ft_steps, psnrs + ft_psnrs
      label = ROWS.get(f'{key}_ft' if f'{key}_ft' in rows else key, key)
      label = label.split(' (')[0]  # the legend's width
      series.append(plotting.Series(label, steps, psnrs))
    charts.append(plotting.line_chart(
        series, title=f'{target}: test PSNR (dB)', xlabel='iteration').image)
  return plotting.tile(charts, columns=1,
                       title='SemiISP comparison: validation curves')


def _with_model(config, model: ml_collections.ConfigDict):
  with config.unlocked():
    config.model = model
  return config


def _comparison_markdown(results: Mapping[str, Any]) -> str:
  lines = ['# SemiISP comparison (held-out test pairs)', '',
           f'Dataset: {results["dataset"]}; every row of a target model '
           f'trains it for {results["budget_steps"]} iterations in total '
           '(phase 2 + fine-tuning = the supervised-only budget).', '']
  if 'isp' in results:
    lines += [f'f_ISP (PQDynamicISP, phase 1, the pseudo-data generator): '
              f'PSNR {results["isp"]["psnr"]:.2f} dB, SSIM '
              f'{results["isp"]["ssim"]:.4f}.', '']
  table = []
  for target, rows in results['targets'].items():
    reference = rows['supervised']['psnr']
    for key, row in rows.items():
      table.append((target, ROWS.get(key, key), f'{row["psnr"]:.2f}',
                    f'{row["ssim"]:.4f}', f'{row["psnr"] - reference:+.2f}'))
  lines += markdown_table(('Target model', 'Training', 'PSNR (dB)', 'SSIM',
                           'vs supervised (dB)'), table)
  lines += ['', f'Wall clock of this invocation: {results["total_seconds"]:.0f}'
            ' s (runs finished earlier are only reloaded and re-read).']
  return '\n'.join(lines) + '\n'
