"""Every benchmark, one table and one JSON: the figures and their ratios.

Runs each script of `SUITE` in its own process (fresh jax, its own device
flags), with the arguments of the chosen mode, collects the JSON it writes,
and turns it into rows of one table:

  benchmark | figure | run s | compile s | reference | ratio

Compile time stays apart from run time (each script times the first call
apart from the median later one). A ratio is always reference time /
rawjax time, measured side by side in the same process where the script
says so (models_vs_torch, train_step_liteisp, isp_pipeline, lut): above 1
where rawjax is faster. Each script's peak resident memory (its process's
`ru_maxrss`) is recorded beside its rows; on an accelerator the scripts add
the device's own memory figures.

    python benchmarks/run_all.py --quick   # under 15 min on 2 CPU cores
    python benchmarks/run_all.py --full    # the paper sizes, 12 MP frames
    python benchmarks/run_all.py --quick --only models_vs_torch lut

Writes benchmarks/results/all_<mode>.json (and each script's own JSON
and its output log under benchmarks/results/all_<mode>/), and prints the
table. A script that
fails or runs out of time is reported with the tail of its error output;
the others still run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any, Callable, Iterable

import _timing  # benchmarks/_timing.py

HERE = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """One script: its arguments per mode and how its JSON becomes rows."""
  script: str
  quick: tuple[str, ...]
  full: tuple[str, ...]
  rows: Callable[[dict[str, Any]], list[dict[str, Any]]]
  timeout_s: int = 1800


def _first(row: dict[str, Any], keys: Iterable[str]) -> Any:
  return next((row[k] for k in keys if row.get(k) is not None), None)


_NAME_KEYS = ('network', 'name', 'component', 'kind', 'figure', 'variant',
              'shape', 'size', 'kernel_size', 'downsample', 'batch',
              'devices', 'images_per_call')


def generic_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
  """Rows of a script whose JSON has a 'rows' list of timed entries.

  The figure's name joins the row's descriptive fields in `_NAME_KEYS`
  order; run and compile seconds, the reference and the ratio are read
  under the names the scripts use.
  """
  out = []
  for row in payload.get('rows', []):
    figure = ', '.join(f'{key} {row[key]}' if key in ('size', 'batch',
                                                      'devices',
                                                      'downsample',
                                                      'kernel_size',
                                                      'images_per_call')
                       else str(row[key]) for key in _NAME_KEYS
                       if row.get(key) is not None)
    out.append({
        'figure': figure,
        'run_s': _first(row, ('run_s', 'jax_s')),
        'compile_s': _first(row, ('compile_s', 'jax_compile_s')),
        'reference': _first(row, ('reference',)) or (
            'PyTorch' if 'torch_s' in row else
            'scipy' if 'speedup_vs_scipy' in row else None),
        'reference_s': _first(row, ('reference_run_s', 'torch_s')),
        'ratio': _first(row, ('ratio', 'speedup', 'speedup_vs_scipy')),
        'throughput': _first(row, ('throughput', 'mp_per_s',
                                   'images_per_s', 'mpix_per_s')),
    })
  return out


def liteisp_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
  """train_step_liteisp.json: forward and train step beside PyTorch."""
  rows = []
  jax_numbers, torch_numbers = payload.get('jax', {}), payload.get('torch')
  for key, name in (('forward', 'forward'), ('train_step', 'train step')):
    run_s = jax_numbers.get(f'{key}_s')
    torch_s = torch_numbers.get(f'{key}_s') if torch_numbers else None
    rows.append({'figure': f'LiteISPNet {name}, L1 + SSIM, batch '
                           f'{payload.get("batch")}',
                 'run_s': run_s, 'compile_s': jax_numbers.get(
                     f'{key}_compile_s'),
                 'reference': 'PyTorch' if torch_s else None,
                 'reference_s': torch_s,
                 'ratio': torch_s / run_s if torch_s and run_s else None})
  return rows


def pipeline_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
  """data_pipeline.json: batches/s per workload."""
  return [{'figure': f'{name} (batches/s)', 'compile_s': w.get('compile_s'),
           'run_s': 1.0 / w['batches_per_s'] if w.get('batches_per_s')
           else None, 'throughput': w.get('batches_per_s')}
          for name, w in payload.get('workloads', {}).items()]


SUITE: dict[str, Benchmark] = {
    'models_vs_torch': Benchmark('models_vs_torch.py', ('--quick',),
                                 ('--full',), generic_rows),
    'train_step_liteisp': Benchmark(
        'train_step_liteisp.py', ('--repeats', '2'), ('--repeats', '3'),
        liteisp_rows, timeout_s=3600),
    'tiled_inference': Benchmark(
        'tiled_inference.py', ('--frame', '480', '704'),
        ('--frame', '1512', '2016'), generic_rows, timeout_s=3600),
    'train_step_cstpp': Benchmark(
        'train_step_cstpp.py',
        ('--variants', 'quick', '--sizes', '128', '--downsample', '1'),
        (), generic_rows),
    'train_step_kpn': Benchmark('train_step_kpn.py',
                                ('--sizes', '3', '--devices', '1'), (),
                                generic_rows),
    'train_step_semiisp': Benchmark('train_step_semiisp.py',
                                    ('--repeats', '3'), (), generic_rows),
    'train_step_raw2raw': Benchmark('train_step.py',
                                    ('--sizes', '128', '--devices', '1'), (),
                                    generic_rows),
    'flow': Benchmark('flow.py', ('--repeats', '2', '--sizes', '256'), (),
                      generic_rows),
    'isp_pipeline': Benchmark('isp_pipeline.py',
                              ('--repeats', '3', '--reference-repeats', '1'),
                              (), generic_rows),
    'lut': Benchmark('lut.py', ('--repeats', '5', '--scipy-repeats', '1'), (),
                     generic_rows),
    'data_pipeline': Benchmark('data_pipeline.py', ('--batches', '10'), (),
                               pipeline_rows),
}


def _wait(child: subprocess.Popen, timeout_s: float
          ) -> tuple[int | None, float | None]:
  """(exit code, peak resident MiB) of `child`, or (None, None) on timeout.

  os.wait4 reaps the child with its own resource usage, so the peak memory
  is this script's alone (RUSAGE_CHILDREN would be the maximum over every
  script run so far).
  """
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
      child.returncode = os.waitstatus_to_exitcode(status)
      return child.returncode, usage.ru_maxrss / 1024
    time.sleep(0.5)
  child.kill()
  child.wait()
  return None, None


def run_script(bench: Benchmark, args: Iterable[str], json_path: pathlib.Path
               ) -> dict[str, Any]:
  """Runs one script in a child process; its payload, time and memory."""
  command = [sys.executable, str(HERE / bench.script), *args,
             '--json', str(json_path)]
  log = json_path.with_suffix('.log')
  start = time.perf_counter()
  json_path.unlink(missing_ok=True)
  with open(log, 'w', encoding='utf-8') as output:
    child = subprocess.Popen(command, cwd=HERE.parent, stdout=output,
                             stderr=subprocess.STDOUT)
    code, peak_mib = _wait(child, bench.timeout_s)
  result: dict[str, Any] = {'seconds': time.perf_counter() - start,
                            'command': command, 'log': str(log),
                            'peak_rss_mib': peak_mib}
  if code is None:
    result['error'] = f'timed out after {bench.timeout_s} s'
  elif code != 0 or not json_path.is_file():
    tail = log.read_text(encoding='utf-8').strip().splitlines()[-15:]
    result['error'] = f'exit code {code}: ' + '\n'.join(tail)
  else:
    result['payload'] = json.loads(json_path.read_text())
  return result


def table(rows: list[dict[str, Any]]) -> str:
  """The one Markdown table of every figure."""
  def number(value, form):
    return form.format(value) if isinstance(value, (int, float)) else ''
  lines = ['| benchmark | figure | run s | compile s | reference | '
           'reference s | ratio |', '|---|---|---|---|---|---|---|']
  for row in rows:
    lines.append(
        f'| {row["benchmark"]} | {row["figure"]} | '
        f'{number(row.get("run_s"), "{:.4g}")} | '
        f'{number(row.get("compile_s"), "{:.1f}")} | '
        f'{row.get("reference") or ""} | '
        f'{number(row.get("reference_s"), "{:.4g}")} | '
        f'{number(row.get("ratio"), "{:.2f}")} |')
  return '\n'.join(lines)


def main(argv=None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  mode = parser.add_mutually_exclusive_group(required=True)
  mode.add_argument('--quick', dest='mode', action='store_const',
                    const='quick')
  mode.add_argument('--full', dest='mode', action='store_const', const='full')
  parser.add_argument('--only', nargs='+', choices=sorted(SUITE),
                      default=list(SUITE))
  parser.add_argument('--json', type=pathlib.Path, default=None,
                      help='default benchmarks/results/all_<mode>.json')
  args = parser.parse_args(argv)
  out_json = args.json or _timing.RESULTS / f'all_{args.mode}.json'
  script_dir = out_json.with_suffix('')
  script_dir.mkdir(parents=True, exist_ok=True)

  rows, scripts = [], {}
  start = time.perf_counter()
  for index, name in enumerate(args.only):
    bench = SUITE[name]
    print(f'[{index + 1}/{len(args.only)}] {name} ...', flush=True)
    result = run_script(bench, getattr(bench, args.mode),
                        script_dir / f'{name}.json')
    payload = result.pop('payload', None)
    scripts[name] = result
    if payload is None:
      print(f'  FAILED: {result["error"]}', flush=True)
      rows.append({'benchmark': name, 'figure': 'FAILED: ' +
                   result['error'].splitlines()[0]})
      continue
    new = [{'benchmark': name, **row} for row in bench.rows(payload)]
    rows += new
    print(f'  {len(new)} figures in {result["seconds"]:.0f} s, peak RSS '
          f'{result["peak_rss_mib"] or 0:.0f} MiB', flush=True)

  report = {'benchmark': 'run_all', 'mode': args.mode,
            'machine': _timing.machine(),
            'seconds': time.perf_counter() - start,
            'scripts': scripts, 'rows': rows}
  print(table(rows))
  _timing.write_json(report, out_json)
  return report


if __name__ == '__main__':
  main()
