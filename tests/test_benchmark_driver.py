"""The benchmark driver (benchmarks/run_all.py): rows, table, child runs.

No timing is asserted: the driver's job is to run scripts, keep their
figures apart (run vs compile) and name each ratio's reference.
"""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] /
                       'benchmarks'))
import run_all  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_generic_rows_read_each_scripts_names():
  payload = {'rows': [
      {'network': 'GCM', 'figure': 'forward 448x448', 'jax_s': 0.3,
       'jax_compile_s': 0.4, 'torch_s': 0.45, 'ratio': 1.5},
      {'name': 'demosaic_bilinear', 'compile_s': 0.7, 'run_s': 0.26,
       'reference': 'colour-demosaicing bilinear', 'reference_run_s': 1.38,
       'speedup': 5.3, 'mp_per_s': 46.0},
      {'name': 'scipy', 'run_s': 1.1, 'speedup_vs_scipy': 1.0},
      {'variant': 'quick', 'kind': 'forward', 'size': 64, 'batch': 4,
       'compile_s': 12.3, 'run_s': 0.02}]}
  rows = run_all.generic_rows(payload)
  assert rows[0] == {'figure': 'GCM, forward 448x448', 'run_s': 0.3,
                     'compile_s': 0.4, 'reference': 'PyTorch',
                     'reference_s': 0.45, 'ratio': 1.5, 'throughput': None}
  assert rows[1]['reference'] == 'colour-demosaicing bilinear'
  assert (rows[1]['reference_s'], rows[1]['ratio'],
          rows[1]['throughput']) == (1.38, 5.3, 46.0)
  assert rows[2]['reference'] == 'scipy'
  assert rows[3]['figure'] == 'forward, quick, size 64, batch 4'


def test_liteisp_rows_compute_the_ratio_as_reference_over_rawjax():
  payload = {'batch': 2, 'jax': {'forward_s': 0.5, 'forward_compile_s': 9.0,
                                 'train_step_s': 4.0,
                                 'train_step_compile_s': 30.0},
             'torch': {'forward_s': 1.0, 'train_step_s': 5.0}}
  rows = run_all.liteisp_rows(payload)
  assert [r['ratio'] for r in rows[:2]] == [2.0, 1.25]
  assert rows[1]['compile_s'] == 30.0
  # Without torch: no reference, no ratio.
  rows = run_all.liteisp_rows({**payload, 'torch': None})
  assert rows[0]['reference'] is None and rows[0]['ratio'] is None


def test_table_leaves_missing_numbers_blank():
  text = run_all.table([{'benchmark': 'b', 'figure': 'f', 'run_s': 0.5,
                         'compile_s': None, 'reference': 'PyTorch',
                         'reference_s': 1.0, 'ratio': 2.0}])
  assert text.splitlines()[2] == '| b | f | 0.5 |  | PyTorch | 1 | 2.00 |'


def _script(tmp_path, body):
  path = tmp_path / 'fake.py'
  path.write_text(body)
  return run_all.Benchmark(str(path), (), (), run_all.generic_rows,
                           timeout_s=60)


def test_run_script_returns_the_payload_and_the_childs_peak_memory(tmp_path):
  bench = _script(tmp_path, (
      'import json, sys\n'
      'path = sys.argv[sys.argv.index("--json") + 1]\n'
      'json.dump({"rows": [{"name": "x", "run_s": 1.0}]}, open(path, "w"))\n'))
  result = run_all.run_script(bench, (), tmp_path / 'out.json')
  assert 'error' not in result
  assert result['payload'] == {'rows': [{'name': 'x', 'run_s': 1.0}]}
  assert result['peak_rss_mib'] > 1


def test_run_script_reports_a_failing_script_with_its_error(tmp_path):
  bench = _script(tmp_path, 'raise SystemExit("no weights given")\n')
  result = run_all.run_script(bench, (), tmp_path / 'out.json')
  assert 'payload' not in result
  assert result['error'].startswith('exit code 1')
  assert 'no weights given' in result['error']


def test_every_suite_script_exists_and_takes_json():
  for name, bench in run_all.SUITE.items():
    source = (run_all.HERE / bench.script).read_text()
    assert '--json' in source or 'argument_parser' in source, name


@pytest.mark.parametrize('argv', [[], ['--quick', '--only', 'nope']])
def test_the_command_line_needs_a_mode_and_known_names(argv):
  with pytest.raises(SystemExit):
    run_all.main(argv)
