"""Compile time of every method's train iteration, cold and from the cache.

For each config (default: every method's quick variant) two fresh
processes build the compiled iteration exactly as the training loop does
(`rawjax.train.compile_report.time_iteration_compile`: init, first batch,
`Parallel.compile(make_iteration(steps))`) and time `lower` and `compile`
apart:

  * cold: an empty persistent compilation cache (the compile also writes
    the cache entry, as a first run of `launch.train` does);
  * warm: a second process on the same cache folder, as a resumed or
    repeated run: its "compile" is loading the executable.

"init s" is `method.init` (its own jitted initialisation included, also
cached in the warm run); "data s" is `make_data` up to the first batch.
The load average (`os.getloadavg`) is recorded with each row: this machine
is shared, and compile times scale with the load.

    python benchmarks/compile_time.py [--configs configs/raw2raw_cstpp.py:quick
        ...] [--per_step] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/compile_time.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import _timing  # benchmarks/_timing.py

ROOT = _timing.ROOT

# Phase-1 variants only: 'quick,semi' and later phases need a trained
# phase-1 workdir (config.pseudo.isp_workdir).
DEFAULT_CONFIGS = (
    'configs/raw2raw_cstpp.py:quick',
    'configs/cstpp_adapt.py:quick',
    'configs/liteisp_zrr.py:quick',
    'configs/kpn_isp.py:quick',
    'configs/raw2raw_semi.py:quick',
    'configs/semiisp_fivek.py:quick,isp',
    'configs/semiie_lol.py:quick,isp',
)


def _child(spec: str, cache_dir: str, per_step: bool) -> dict:
  """In this process: the compile report of `spec` with the cache on."""
  # pylint: disable=g-import-not-at-top
  import jax
  from rawjax.train import compilation_cache
  from rawjax.train import compile_report
  from rawjax.train.config import load_config_module
  compilation_cache.enable_compilation_cache(cache_dir)
  events = []
  jax.monitoring.register_event_listener(
      lambda name, **_: events.append(name))
  path, _, variant = spec.partition(':')
  config = load_config_module(ROOT / path).get_config(variant)
  report = compile_report.time_iteration_compile(config, per_step=per_step,
                                                 events=events)
  report['load_after'] = os.getloadavg()[0]
  return report


def _run(spec: str, cache_dir: str, per_step: bool) -> dict:
  load = os.getloadavg()[0]
  command = [sys.executable, __file__, '--child', spec, '--cache_dir',
             cache_dir] + (['--per_step'] if per_step else [])
  out = subprocess.run(command, check=False, stdout=subprocess.PIPE,
                       text=True, cwd=ROOT)
  if out.returncode:
    return dict(error=f'exit status {out.returncode} (its stderr is above)',
                load_before=load)
  report = json.loads(out.stdout.strip().splitlines()[-1])
  report['load_before'] = load
  return report


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'compile_time', repeats=1)
  parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS))
  parser.add_argument('--per_step', action='store_true',
                      help='also compile each step function alone')
  # One measurement in this process (what the parent runs twice).
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--cache_dir', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(_child(args.child, args.cache_dir, args.per_step)))
    return None
  rows, failed = [], []
  for spec in args.configs:
    with tempfile.TemporaryDirectory(prefix='rawjax_compile_cache_') as cache:
      for phase in ('cold', 'warm'):
        report = _run(spec, cache, args.per_step)
        report.update(config=spec, cache=phase)
        if 'error' in report:
          failed.append(report)
          print(f'{spec}: failed, {report["error"]}', file=sys.stderr)
          break
        rows.append(report)
        print(f'{spec} {phase}: lower {report["lower_s"]:.1f} s, compile '
              f'{report["compile_s"]:.1f} s (load {report["load_before"]:.1f})',
              file=sys.stderr, flush=True)
  print(_timing.markdown_table(
      [('config', '{config}'), ('cache', '{cache}'), ('init s', '{init_s:.1f}'),
       ('data s', '{data_s:.1f}'), ('lower s', '{lower_s:.1f}'),
       ('compile s', '{compile_s:.1f}'), ('cache hit', '{cache_hit}'),
       ('HLO ops', '{hlo_ops}'),
       ('load', '{load_before:.1f}')], rows))
  payload = dict(rows=rows, failed=failed, machine=_timing.machine())
  _timing.write_json(payload, args.json)
  return payload


if __name__ == '__main__':
  main()
