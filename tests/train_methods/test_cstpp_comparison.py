"""The CSTPP comparison driver: its convergence rule, variants and curves."""

import pathlib

import numpy as np
import pytest

from rawjax.methods.cstpp import comparison
from rawjax.methods.cstpp import config as cstpp_config
from rawjax.train import config as config_lib
from rawjax.train.config import load_config_module

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'configs'


def _records(psnr, cycle, *, every=500, steps=3000):
  records = []
  for step in range(50, steps + 1, 50):
    record = {'step': step, comparison._CYCLE: cycle(step)}
    if step % every == 0:
      for tag in ('a_to_b', 'b_to_a'):
        for metric in comparison._METRICS:
          record[f'eval/{tag}/ours/{metric}'] = (
              psnr(step) if metric == 'psnr' else 0.1)
    records.append(record)
  return records


def test_converged_follows_the_protocol():
  flat = _records(lambda s: 34.0 + 0.1 * (s % 1000 == 0), lambda s: 0.004)
  result = comparison.converged(flat)
  assert result['converged']
  assert result['max_psnr_move'] == pytest.approx(0.1)
  assert result['cycle_change'] == pytest.approx(0.0)
  # A 0.8 dB swing within the last 1,000 iterations: not converged.
  swinging = _records(lambda s: 34.0 + 0.8 * (s == 2500), lambda s: 0.004)
  assert not comparison.converged(swinging)['converged']
  # PSNR flat but the cycle loss still falling 20 %: not converged.
  falling = _records(lambda s: 34.0, lambda s: 0.01 * (1 - s / 10_000))
  result = comparison.converged(falling)
  assert not result['converged'] and result['cycle_change'] > 0.05
  assert not comparison.converged(falling[:5])['converged']  # one eval


def test_every_variant_is_a_valid_config():
  base = load_config_module(CONFIGS / 'raw2raw_cstpp.py').get_config('quick')
  for name, (label, changes) in comparison.VARIANTS.items():
    config = config_lib.with_changes(base, changes)
    cstpp_config.check_config(config)
    for key, value in changes.items():
      node = config
      for part in key.split('.'):
        node = node[part]
      assert node == value, (name, key)
    assert label
  assert base.model.transform != 'global'   # the base is not changed


def test_unknown_variant_is_named(tmp_path):
  base = load_config_module(CONFIGS / 'raw2raw_cstpp.py').get_config('quick')
  with pytest.raises(ValueError, match="unknown variants \\['pix2pix'\\]"):
    comparison.compare(base, tmp_path, variants=('patch', 'pix2pix'))


def test_curves_figure_draws_every_variant():
  runs = {'patch': _records(lambda s: 30 + s / 1000, lambda s: 0.004),
          'global': _records(lambda s: 31 + s / 2000, lambda s: 0.005)}
  image = comparison.curves_figure(runs, {'patch': 'A', 'global': 'B'})
  assert image.width > 600 and image.height > 600


def test_late_mean_averages_the_last_evaluations():
  records = _records(lambda s: 30 + s / 1000, lambda s: 0.004)
  late = comparison.late_mean(records, count=3)
  steps = late['steps']
  assert len(steps) == 3 and steps[-1] == records[-1]['step']
  want = np.mean([30 + s / 1000 for s in steps])
  assert late['a_to_b']['psnr'] == pytest.approx(want)
  assert late['b_to_a']['psnr'] == pytest.approx(want)
