"""Figures of a run: training curves from metrics.jsonl, a results chart.

`write_curves(workdir)` draws WORKDIR/curves.png from WORKDIR/metrics.jsonl
(the loop's JSON lines): one panel of the training losses ('train/loss*')
against the step, then one panel per evaluation metric ('eval/.../<metric>',
a line per method/direction). The loop calls it after every evaluation,
so the figure of a finished run includes its final evaluation.

`write_results_figure(results, path)` draws the tables of a results.json
(`results_tables`) as dot charts: a panel per (table, metric), a row per
method or baseline, its value with a whisker of +- its std where the
results have one. `write_results` calls it beside results.md.

Choices no paper makes (also in the 'Figures' section of each method's
page in docs/):
  * the y axis of a panel is log10 when all its values are positive and
    span more than `LOG_SPAN` (losses fall by decades; metrics do not);
  * the optimiser diagnostics ('train/grad_norm', 'param_norm',
    'update_norm', 'steps_per_second', 'skipped_steps', learning rates)
    are left out: they are in TensorBoard, and the figures are for readers
    of results;
  * non-loss training metrics (e.g. 'train/anchor_psnr_a_to_b') get a
    panel per metric name found in the key (`METRIC_NAMES`), else one per
    key;
  * a step logged twice (a resumed run repeats the steps after its last
    checkpoint) keeps its last value.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
from PIL import Image

from rawjax.eval import plotting

__all__ = [
    'LOG_SPAN', 'METRIC_NAMES', 'Panel', 'Table', 'curve_panels',
    'curves_figure', 'read_metrics', 'results_figure', 'results_tables',
    'write_curves', 'write_results_figure',
]

LOG_SPAN = 20.0
# Score names the evaluations report (rawjax.eval.scoring.SCORES and the
# methods' own), used to group training metrics into panels and to name
# the axes.
METRIC_NAMES = ('psnr', 'ssim', 'mae', 'chart_mae', 'delta_e2000', 'kl',
                'lpips', 'angular_error')
_UNITS = {'psnr': 'PSNR (dB)', 'ssim': 'SSIM', 'mae': 'MAE',
          'chart_mae': 'chart MAE', 'delta_e2000': 'DeltaE 2000',
          'kl': 'KL', 'lpips': 'LPIPS', 'angular_error': 'angular error (deg)'}
# Searched in the last part of a key ('grad_norm_a', 'gcm_grad_norm': one
# network's of several).
_DIAGNOSTICS = re.compile(
    r'(grad|param|update)_norm|^(steps_per_second|skipped_steps|'
    r'learning_rate|lr)$')
# Entries of a results row that are bookkeeping, not scores.
_NOT_SCORES = frozenset({'step', 'count', 'repeats', 'num_images',
                         'num_test', 'seconds'})
_PANEL_SIZE = (480, 300)
_COLUMNS = 3


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, float]]:
  """The records of a metrics.jsonl, sorted by step, one per step.

  Records of the same step are merged (the train and eval scalars of a
  step are separate lines); a key logged twice for one step keeps the
  later value (a resumed run logs again the steps after its checkpoint).
  A line that is not JSON is skipped with a warning: a run killed while
  writing leaves a truncated line, and the resumed run appends after it.

  Raises:
    ValueError: a JSON line is not an object with an integer 'step' (the
      file and line are named).
  """
  path = pathlib.Path(path)
  merged: dict[int, dict[str, float]] = {}
  for number, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      logging.warning('%s:%d: not JSON (a truncated write?); skipped.', path,
                      number)
      continue
    try:
      step = int(record.pop('step'))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
      raise ValueError(f'{path}:{number}: not a metrics record with a '
                       f'"step" ({e!r}).') from e
    merged.setdefault(step, {}).update(
        {k: float(v) for k, v in record.items()
         if isinstance(v, (int, float)) and not isinstance(v, bool)})
  return [dict(step=step, **merged[step]) for step in sorted(merged)]


def _metric_name(key: str) -> str | None:
  """The longest of `METRIC_NAMES` that is a '_'/'/'-separated part of key."""
  tokens = re.split(r'[/_]', key)
  for name in sorted(METRIC_NAMES, key=len, reverse=True):
    parts = name.split('_')
    for i in range(len(tokens) - len(parts) + 1):
      if tokens[i:i + len(parts)] == parts:
        return name
  return None


def _log_scale(values: Sequence[float]) -> bool:
  finite = [v for v in values if math.isfinite(v)]
  return bool(finite) and min(finite) > 0 and (
      max(finite) / min(finite) > LOG_SPAN)


@dataclasses.dataclass(frozen=True)
class Panel:
  """One chart of the curves figure."""
  title: str
  ylabel: str
  series: tuple[plotting.Series, ...]

  @property
  def log_y(self) -> bool:
    return _log_scale([y for s in self.series for y in s.y])


def curve_panels(records: Sequence[Mapping[str, float]]) -> list[Panel]:
  """The panels of the curves figure from `read_metrics` records.

  Order: training losses ('train/[<step>/]loss*', a panel per train step
  of the method), other training metrics (a panel per metric name found
  in the key, else per train step, else per key), then a panel per
  evaluation metric (the last part of 'eval/<row>/<metric>'; its lines
  are the rows). Diagnostics are left out (module docstring).
  """
  columns: dict[str, tuple[list[float], list[float]]] = {}
  for record in records:
    for key, value in record.items():
      if key == 'step':
        continue
      xs, ys = columns.setdefault(key, ([], []))
      xs.append(record['step'])
      ys.append(value)
  # (kind, group, is a loss group) -> keys; a method of several steps
  # logs 'train/<step>/<name>' (CycleGAN: generator_step, discriminator_step)
  # and gets a group per step.
  groups: dict[tuple[str, str, bool], list[str]] = collections.defaultdict(
      list)
  for key in columns:
    kind, _, name = key.partition('/')
    if kind not in ('train', 'eval') or not name:
      continue
    prefix, _, last = name.rpartition('/')
    if _DIAGNOSTICS.search(last):
      continue
    if kind == 'eval':
      groups[('eval', last, False)].append(key)
    elif last.startswith('loss'):
      groups[('train', prefix, True)].append(key)
    elif _metric_name(last):
      groups[('train', f'{prefix} {_metric_name(last)}'.strip(), False)
             ].append(key)
    else:
      groups[('train', prefix or last, False)].append(key)
  panels = []
  for (kind, name, is_loss), keys in sorted(
      groups.items(), key=lambda g: (g[0][0] != 'train', not g[0][2],
                                     g[0][1])):
    series = []
    for key in sorted(keys):
      if not any(math.isfinite(y) for y in columns[key][1]):
        continue  # a score that is NaN throughout has no line to draw
      label = key.split('/', 1)[1]
      if kind == 'eval':
        label = label.rsplit('/', 1)[0] if '/' in label else 'eval'
      else:  # the train step, if any, is in the panel's title
        label = label.rpartition('/')[2]
      series.append(plotting.Series(label, *columns[key]))
    if not series:
      continue
    if is_loss:
      title = f'training losses: {name}' if name else 'training losses'
      ylabel = 'loss'
    else:
      title = f'{"training" if kind == "train" else "evaluation"}: {name}'
      metric = name.rpartition(' ')[2]
      ylabel = _UNITS.get(metric, metric)
    panels.append(Panel(title, ylabel, tuple(series)))
  return panels


def curves_figure(workdir: str | os.PathLike[str], *,
                  title: str | None = None) -> Image.Image | None:
  """The curves of WORKDIR/metrics.jsonl as one RGB image.

  Panels of `curve_panels`, 480 x 300 pixels each, three per row, under
  `title` (default the workdir's name).

  Returns:
    The image, or None when metrics.jsonl is missing or has nothing to
    draw yet (a run stopped before its first log step).
  """
  workdir = pathlib.Path(workdir)
  metrics = workdir / 'metrics.jsonl'
  if not metrics.exists():
    return None
  records = read_metrics(metrics)
  panels = curve_panels(records)
  if not panels:
    return None
  # One step axis for every panel, so that an evaluation at the end sits
  # under the end of the training curves; 3 % room keeps its marker off
  # the frame.
  first, last = records[0]['step'], records[-1]['step']
  pad = 0.03 * (last - first)
  xlim = (first - pad, last + pad) if last > first else None
  charts = [plotting.line_chart(p.series, size=_PANEL_SIZE, title=p.title,
                                xlabel='step', ylabel=p.ylabel,
                                log_y=p.log_y, xlim=xlim).image
            for p in panels]
  return plotting.tile(charts, columns=_COLUMNS,
                       title=workdir.name if title is None else title)


def write_curves(workdir: str | os.PathLike[str], *,
                 path: str | os.PathLike[str] | None = None,
                 title: str | None = None) -> pathlib.Path | None:
  """`curves_figure(workdir)` as WORKDIR/curves.png (or `path`).

  Returns:
    The PNG written, or None (nothing written) when there is nothing to
    draw.
  """
  image = curves_figure(workdir, title=title)
  if image is None:
    return None
  path = (pathlib.Path(path) if path is not None else
          pathlib.Path(workdir) / 'curves.png')
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path)
  return path


@dataclasses.dataclass(frozen=True)
class Table:
  """One results table: rows (methods, baselines) of metric values.

  rows: {row name: {metric: (value, std or None)}}; title: where the table
  is in the results ('directions / A -> B', 'targets / unet', '').
  """
  title: str
  rows: dict[str, dict[str, tuple[float, float | None]]]

  @property
  def metrics(self) -> list[str]:
    seen = {}
    for row in self.rows.values():
      seen.update(dict.fromkeys(row))
    return list(seen)


def _number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _scores(row: Mapping[str, Any]) -> dict[str, tuple[float, float | None]]:
  out = {}
  for key, value in row.items():
    if (not _number(value) or key in _NOT_SCORES or key.endswith('_std')):
      continue
    std = row.get(f'{key}_std')
    out[key] = (float(value), float(std) if _number(std) else None)
  return out


def results_tables(results: Mapping[str, Any]) -> list[Table]:
  """The tables in a results.json, wherever the method put them.

  A table is a mapping whose every value is a row: a mapping with at
  least one numeric score (numbers that are not bookkeeping such as
  'step' or 'count', nor '<metric>_std', which is the row's spread of
  <metric>). This finds the layouts of every method: 'directions' /
  <dir> / 'rows' (raw-to-raw, titled by the direction's 'title'), 'rows'
  (KPN), 'settings' (LiteISPNet), 'targets' / <model> (the SemiISP
  comparison). Lists (per-image scores) are not searched.
  """
  def find(node: Mapping[str, Any]) -> list[tuple[list[str], dict]]:
    rows = {k: _scores(v) for k, v in node.items() if isinstance(v, Mapping)}
    if node and len(rows) == len(node) and all(rows.values()):
      return [([], rows)]
    found = []
    for key, value in node.items():
      if isinstance(value, Mapping):
        name = value.get('title')
        found.append((name if isinstance(name, str) else str(key),
                      find(value)))
    found = [(name, tables) for name, tables in found if tables]
    # Only names that tell tables apart: two directions do; 'rows', the
    # one part of a KPN result that holds a table, does not.
    return [(([name] if len(found) > 1 else []) + parts, rows)
            for name, tables in found for parts, rows in tables]

  return [Table(' / '.join(parts), rows) for parts, rows in find(results)]


def results_figure(results: Mapping[str, Any]) -> Image.Image | None:
  """The tables of `results` as dot charts in one RGB image.

  A row of panels per table (`results_tables`), a panel per metric; each
  panel a dot per table row (`plotting.dot_chart`), a whisker of +- the
  row's std where it has one. Metrics that are NaN in every row of a
  table are left out.

  Returns:
    The image, or None when the results hold no table.
  """
  charts, columns = [], 1
  for table in results_tables(results):
    row_charts = []
    for metric in table.metrics:
      names = [n for n, row in table.rows.items() if metric in row]
      values = [table.rows[n][metric][0] for n in names]
      if not any(math.isfinite(v) for v in values):
        continue
      title = f'{table.title}: {metric}' if table.title else metric
      row_charts.append(plotting.dot_chart(
          names, values, errors=[table.rows[n][metric][1] for n in names],
          title=title, xlabel=_UNITS.get(metric, metric)).image)
    columns = max(columns, len(row_charts))
    charts.append(row_charts)
  if not any(charts):
    return None
  # Each table starts a row of the figure, so a column is one metric.
  width = max(im.width for row in charts for im in row)
  blank = lambda h: Image.new('RGB', (width, h), 'white')  # noqa: E731
  cells = []
  for row in charts:
    if not row:
      continue
    height = max(im.height for im in row)
    cells += row + [blank(height)] * (columns - len(row))
  return plotting.tile(cells, columns=columns)


def write_results_figure(results: Mapping[str, Any],
                         path: str | os.PathLike[str]) -> pathlib.Path | None:
  """`results_figure(results)` as a PNG at `path`.

  Returns:
    `path`, or None (nothing written) when the results hold no table.
  """
  image = results_figure(results)
  if image is None:
    return None
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path)
  return path
