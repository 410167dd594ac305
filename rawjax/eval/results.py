"""results.json and results.md: what every evaluation writes.

An evaluation returns flat scalars to the loop (TensorBoard, metrics.jsonl)
and writes its full results beside them: `results.json` (every row, every
setting) and `results.md` (the paper's table). The helpers here make the
two files the same way for every method.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from rawjax.eval import figures

__all__ = [
    'markdown_table', 'metric_cells', 'scalars', 'to_builtin',
    'write_default_results', 'write_results',
]


def to_builtin(x: Any) -> Any:
  """`json.dumps(default=...)` for numpy and JAX values."""
  if isinstance(x, (np.generic, np.ndarray, jax.Array)):
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()
  raise TypeError(f'{type(x).__name__} is not JSON serialisable')


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
  """The entries of `values` that are numeric scalars, as floats."""
  out = {}
  for key, value in values.items():
    if isinstance(value, (bool, str)) or np.ndim(value) != 0:
      continue
    try:
      out[key] = float(value)
    except (TypeError, ValueError):
      continue
  return out


def metric_cells(row: Mapping[str, Any], keys: Sequence[str],
                 digits: Mapping[str, int]) -> list[str]:
  """Table cells of one results row: 'mean' or 'mean +- std' per metric."""
  cells = []
  for k in keys:
    text = f'{row[k]:.{digits[k]}f}'
    if row.get(f'{k}_std') is not None:
      text += f' +- {row[f"{k}_std"]:.{digits[k]}f}'
    cells.append(text)
  return cells


def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[str]]) -> list[str]:
  """The lines of a Markdown table."""
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return lines


def write_results(directory: str | os.PathLike[str],
                  results: Mapping[str, Any], markdown: str) -> None:
  """DIR/results.json (`results`, indented), DIR/results.md (`markdown`)
  and, when `results` hold a table, its chart DIR/results.png
  (`rawjax.eval.figures.write_results_figure`).

  Only process 0 writes (every host evaluates the same numbers).
  """
  if jax.process_index() != 0:
    return
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  (directory / 'results.json').write_text(
      json.dumps(results, indent=1, default=to_builtin) + '\n')
  (directory / 'results.md').write_text(markdown)
  # The chart reads the values as results.json stores them (numpy scalars
  # become floats), so it shows what the file says.
  chart = directory / 'results.png'
  if figures.write_results_figure(
      json.loads((directory / 'results.json').read_text()), chart) is None:
    chart.unlink(missing_ok=True)  # no stale chart beside new tables


def write_default_results(directory: str | os.PathLike[str],
                          results: Mapping[str, Any], *, step: int) -> None:
  """DIR/results.json and DIR/results.md, unless the method wrote them.

  results.json: {"step": k, "results": {...}}; results.md: a two-column
  table of the scalar results. Existing files are left as they are (a
  method's own tables are richer).
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  json_path, md_path = directory / 'results.json', directory / 'results.md'
  if not json_path.exists():
    payload = dict(step=int(step), results=dict(results))
    json_path.write_text(json.dumps(payload, indent=2, default=to_builtin) +
                         '\n')
  if not md_path.exists():
    lines = [f'# Evaluation at step {step}', '']
    lines += markdown_table(('metric', 'value'), [
        (k, f'{v:.6g}') for k, v in scalars(results).items()])
    md_path.write_text('\n'.join(lines) + '\n')
