"""The docs' figures: runs each method's quick run and copies its figures.

    python -m launch.figures [--methods=raw2raw_semi,cstpp,liteisp,kpn,semiisp]
        [--runs_dir=out/figures] [--figures_dir=docs/figures] [--reuse]
        [--args=METHOD:ARG ...] [--max_kb=300] [--grid_rows=2]

For every method, runs its quick command (`METHODS`; a finished run is
only re-read, an interrupted one resumes) in RUNS_DIR/<method>, then
writes to FIGURES_DIR:

  <method>_curves.png   training losses and evaluation metrics against
                        the step (`rawjax.eval.figures.write_curves`; a
                        method of several runs, the SemiISP comparison,
                        gets one block of panels per run);
  <method>_results.png  the results tables as charts
                        (`rawjax.eval.figures.write_results_figure`);
  <method>_grid.png     the titles and first --grid_rows rows of the
                        run's labelled evaluation grid;

each reduced (a palette, then 0.8x steps) to at most --max_kb kilobytes;
and FIGURES_DIR/sources.json: per method the workdir, the command (when
it ran), the `train.num_steps` of every run (from its config.json) and
the files and step every figure came from.
`--reuse` draws from the existing workdirs without running anything.
`--args=METHOD:ARG` appends ARG to that method's command (repeatable),
e.g. `--args=raw2raw_semi:--config.train.num_steps=1000`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import subprocess
import sys
from collections.abc import Sequence

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from rawjax.eval import figures
from rawjax.eval import images as eval_images


@dataclasses.dataclass(frozen=True)
class MethodRun:
  """How a method's quick run is started and where its grid is."""
  module: str                 # the launch module (python -m)
  config: str                 # configs/<file>.py:quick
  grid: str                   # the grid file in an evaluation directory
  grid_run: str = ''          # the sub-run holding it ('' = the workdir)


METHODS = {
    'raw2raw_semi': MethodRun('launch.train', 'configs/raw2raw_semi.py:quick',
                              'grid_a_to_b.png'),
    'cstpp': MethodRun('launch.train', 'configs/raw2raw_cstpp.py:quick',
                       'grid_a_to_b.png'),
    'liteisp': MethodRun('launch.train', 'configs/liteisp_zrr.py:quick',
                         'grid.png'),
    'kpn': MethodRun('launch.train', 'configs/kpn_isp.py:quick', 'grid.png'),
    # The comparison's last row of the first target: SemiISP + fine-tuning.
    'semiisp': MethodRun('launch.semiisp_compare',
                         'configs/semiisp_fivek.py:quick', 'grid.png',
                         grid_run='unet/one_to_many_ft'),
}

_METHODS = flags.DEFINE_list('methods', list(METHODS),
                             f'Methods to draw, of {list(METHODS)}.')
_RUNS = flags.DEFINE_string('runs_dir', 'out/figures',
                            'Parent of the workdirs RUNS_DIR/<method>.')
_OUT = flags.DEFINE_string('figures_dir', 'docs/figures',
                           'Where the PNGs go.')
_REUSE = flags.DEFINE_bool('reuse', False,
                           'Draw from existing workdirs; run nothing.')
_ARGS = flags.DEFINE_multi_string(
    'args', [], 'METHOD:ARG, appended to that method\'s command.')
_MAX_KB = flags.DEFINE_integer('max_kb', 300, 'Largest PNG, in kilobytes.')
_GRID_ROWS = flags.DEFINE_integer('grid_rows', 2,
                                  'Rows of the evaluation grid to keep.')


def command(method: str, workdir: pathlib.Path,
            extra: Sequence[str] = ()) -> list[str]:
  """The command line of `method`'s quick run in `workdir`."""
  run = METHODS[method]
  return [sys.executable, '-m', run.module, f'--config={run.config}',
          f'--workdir={workdir}', *extra]


def _extra_args(entries: Sequence[str]) -> dict[str, list[str]]:
  out: dict[str, list[str]] = {}
  for entry in entries:
    method, sep, arg = entry.partition(':')
    if not sep or method not in METHODS or not arg:
      raise app.UsageError(f'--args={entry!r}: expected METHOD:ARG with '
                           f'METHOD one of {list(METHODS)}.')
    out.setdefault(method, []).append(arg)
  return out


def _newest_eval(run: pathlib.Path) -> pathlib.Path | None:
  evals = sorted((run / 'eval').glob('step_*/results.json'))
  return evals[-1].parent if evals else None


def _runs(workdir: pathlib.Path) -> list[pathlib.Path]:
  """The training runs of a workdir: itself, or its sub-runs (SemiISP)."""
  if (workdir / 'metrics.jsonl').exists():
    return [workdir]
  return sorted(p.parent for p in workdir.rglob('metrics.jsonl'))


def _png(image: Image.Image) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format='PNG', optimize=True)
  return buffer.getvalue()


def save_small(image: Image.Image, path: pathlib.Path, *,
               max_bytes: int) -> tuple[int, int]:
  """`image` as a PNG of at most `max_bytes` at `path`.

  Charts (flat colours) fit as they are. Photographs are first reduced to
  a 256-colour palette (Floyd-Steinberg dithered; it keeps the size, so
  the titles stay legible), then shrunk by 0.8x steps until they fit.

  Returns:
    The (width, height) written.

  Raises:
    ValueError: even a 64-pixel-wide copy is larger than `max_bytes`.
  """
  image = image.convert('RGB')
  data = _png(image)
  while len(data) > max_bytes:
    if image.width < 64:
      raise ValueError(f'{path}: no PNG under {max_bytes} bytes.')
    data = _png(image.quantize(256, method=Image.Quantize.MEDIANCUT,
                               dither=Image.Dither.FLOYDSTEINBERG))
    if len(data) > max_bytes:
      image = image.resize((int(image.width * 0.8), int(image.height * 0.8)),
                           Image.Resampling.LANCZOS)
      data = _png(image)
  path.write_bytes(data)
  return image.size


def first_grid_rows(image: Image.Image, rows: int) -> Image.Image:
  """The column titles and the first `rows` rows of a labelled grid.

  A `rawjax.eval.labelled_grid` separates its rows by white lines across
  the whole width; the title band is the first block of non-white lines
  (shorter than two text lines), then a block per image row.
  """
  gray = np.asarray(image.convert('L'))
  white = (gray == 255).all(axis=1)
  blocks, start = [], None
  for y, is_white in enumerate(white):
    if not is_white and start is None:
      start = y
    elif is_white and start is not None:
      blocks.append((start, y))
      start = None
  if start is not None:
    blocks.append((start, len(white)))
  if blocks and blocks[0][1] - blocks[0][0] < 2 * eval_images.FONT_SIZE:
    rows += 1  # the title band
  if len(blocks) <= rows:
    return image
  return image.crop((0, 0, image.width, blocks[rows - 1][1] + 2))


def _stack(images: Sequence[Image.Image]) -> Image.Image:
  canvas = Image.new('RGB', (max(im.width for im in images),
                             sum(im.height for im in images)), 'white')
  top = 0
  for im in images:
    canvas.paste(im, (0, top))
    top += im.height
  return canvas


def draw(method: str, workdir: pathlib.Path, out: pathlib.Path, *,
         max_bytes: int, grid_rows: int = 2) -> dict[str, dict[str, object]]:
  """Writes out/<method>_{curves,results,grid}.png from a finished workdir.

  The grid keeps its titles and first `grid_rows` rows (the docs show
  what the columns are; every row is in the workdir).

  Returns:
    {figure file: {'from': source path(s), 'size': [w, h]}}; the results
    chart also has its 'step' (a comparison: its iteration budget).

  Raises:
    FileNotFoundError: the workdir has no training run or no results.
  """
  runs = _runs(workdir)
  if not runs:
    raise FileNotFoundError(f'{workdir}: no metrics.jsonl (run {method} '
                            'first, or drop --reuse).')
  written = {}
  curves = {run: figures.curves_figure(
      run, title=str(run.relative_to(workdir.parent))) for run in runs}
  curves = {run: image for run, image in curves.items() if image is not None}
  if curves:
    path = out / f'{method}_curves.png'
    size = save_small(_stack(list(curves.values())), path,
                      max_bytes=max_bytes)
    written[path.name] = {'from': [str(r / 'metrics.jsonl') for r in curves],
                          'size': size}
  # A comparison writes its table in the workdir; a training run in its
  # newest evaluation directory.
  results_json = workdir / 'results.json'
  if not results_json.exists():
    newest = _newest_eval(workdir)
    if newest is None:
      raise FileNotFoundError(f'{workdir}: no results.json (the run did not '
                              'finish its evaluation).')
    results_json = newest / 'results.json'
  path = out / f'{method}_results.png'
  results = json.loads(results_json.read_text())
  chart = figures.results_figure(results)
  if chart is not None:
    size = save_small(chart, path, max_bytes=max_bytes)
    written[path.name] = {'from': str(results_json), 'size': size,
                          'step': results.get('step',
                                              results.get('budget_steps'))}
  spec = METHODS[method]
  grid_eval = _newest_eval(workdir / spec.grid_run)
  if grid_eval is not None and (grid_eval / spec.grid).exists():
    path = out / f'{method}_grid.png'
    size = save_small(first_grid_rows(Image.open(grid_eval / spec.grid),
                                      grid_rows), path, max_bytes=max_bytes)
    written[path.name] = {'from': str(grid_eval / spec.grid), 'size': size}
  return written


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  unknown = set(_METHODS.value) - set(METHODS)
  if unknown:
    raise app.UsageError(f'unknown methods {sorted(unknown)}; known: '
                         f'{list(METHODS)}.')
  extra = _extra_args(_ARGS.value)
  runs, out = pathlib.Path(_RUNS.value), pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  sources_path = out / 'sources.json'
  sources = (json.loads(sources_path.read_text()) if sources_path.exists()
             else {})
  for method in _METHODS.value:
    workdir = runs / method
    cmd = command(method, workdir, extra.get(method, ()))
    if not _REUSE.value:
      print(' '.join(cmd[1:]), flush=True)
      subprocess.run(cmd, check=True)
    written = draw(method, workdir, out, max_bytes=_MAX_KB.value * 1024,
                   grid_rows=_GRID_ROWS.value)
    # What the runs were, read from their workdirs (with --reuse the
    # command here need not be the one that trained them).
    steps = {str(run.relative_to(workdir)): json.loads(
        (run / 'config.json').read_text())['train']['num_steps']
             for run in _runs(workdir) if (run / 'config.json').exists()}
    sources[method] = {'workdir': str(workdir), 'figures': written,
                       'num_steps': steps}
    if not _REUSE.value:
      sources[method]['command'] = ' '.join(['python', *cmd[1:]])
    for name, info in written.items():
      print(f'{out / name}: {info["size"][0]} x {info["size"][1]}')
  sources_path.write_text(json.dumps(sources, indent=1, sort_keys=True) + '\n')


if __name__ == '__main__':
  app.run(main)
