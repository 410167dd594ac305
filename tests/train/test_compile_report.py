"""`time_iteration_compile` builds the loop's iteration and times it."""

import jax
import jax.numpy as jnp

from rawjax.train import compile_report

from . import toy


def test_reports_the_loops_iteration_of_the_toy_method():
  config = toy.get_config()
  config.parallel.num_devices = 2
  report = compile_report.time_iteration_compile(config, per_step=True)
  assert report['method'] == toy.NAME
  for key in ('init_s', 'data_s', 'lower_s', 'compile_s'):
    assert report[key] >= 0.0, key
  # One SGD step: a dot_general for x . w (and more for its gradient).
  assert report['hlo_counts']['dot_general'] >= 2
  assert report['hlo_ops'] == sum(report['hlo_counts'].values())
  assert [s['name'] for s in report['steps']] == ['sgd_step']
  # The only step alone is the same program as the whole iteration.
  assert report['steps'][0]['hlo_ops'] == report['hlo_ops']


def test_hlo_op_counts_counts_stablehlo_ops():
  text = jax.jit(lambda x: jnp.sin(x) + jnp.cos(x) * 2.0).lower(
      jnp.ones(3)).as_text()
  counts = compile_report.hlo_op_counts(text)
  assert counts['sine'] == 1 and counts['cosine'] == 1
  assert counts['add'] == 1 and counts['multiply'] == 1
