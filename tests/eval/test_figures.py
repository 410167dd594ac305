"""The PIL chart drawer, the training-curve figure and the results chart."""

import json

import numpy as np
import pytest
from PIL import Image

from launch import figures as launch_figures
from rawjax import eval as rawjax_eval
from rawjax.eval import figures, plotting, results as eval_results

_BLUE = plotting.PALETTE[0]
_ORANGE = plotting.PALETTE[1]


def _pixel(image, xy):
  return image.getpixel((int(round(xy[0])), int(round(xy[1]))))


def _has_color(image, color, box):
  """Whether `color` occurs in the pixel box (left, top, right, bottom)."""
  pixels = np.asarray(image.crop(box))
  return bool((pixels == np.array(color, np.uint8)).all(-1).any())


def test_ticks_are_round_and_cover_the_range():
  np.testing.assert_allclose(plotting.nice_ticks(0.0, 1.0), [0, .25, .5, .75,
                                                             1.0])
  np.testing.assert_allclose(plotting.nice_ticks(17.3, 31.2), [20, 25, 30])
  np.testing.assert_allclose(plotting.log_ticks(0.05, 2000),
                             [0.1, 1, 10, 100, 1000])
  # Less than a decade: the 1-2-5 (then 1-2-3-5-7) steps inside it.
  np.testing.assert_allclose(plotting.log_ticks(1.5, 9), [2, 3, 5, 7])
  with pytest.raises(ValueError, match='0 < lo'):
    plotting.log_ticks(0.0, 1.0)


def test_line_chart_draws_the_line_where_the_data_are():
  series = plotting.Series('y = x', [0, 10], [0, 10])
  flat = plotting.Series('y = 8', [0, 5, 10], [8, np.nan, 8])
  chart = plotting.line_chart([series, flat], size=(240, 160), title='t',
                              xlabel='step', ylabel='y', xlim=(0, 10),
                              ylim=(0, 10))
  assert chart.image.size == (240, 160) and chart.image.mode == 'RGB'
  left, top, right, bottom = chart.axes.box
  assert chart.axes.px(0, 0) == (left, bottom)
  assert chart.axes.px(10, 10) == (right, top)
  for x in (2.0, 4.5, 7.0):
    assert _pixel(chart.image, chart.axes.px(x, x)) == _BLUE
  # Off the line: background (or a grid line), never a series colour.
  assert _pixel(chart.image, chart.axes.px(7.0, 2.0)) in ((255, 255, 255),
                                                          (230, 230, 230))
  # The NaN at x = 5 breaks 'y = 8': only its two markers are drawn.
  assert _pixel(chart.image, chart.axes.px(0, 8)) == _ORANGE
  u, v = chart.axes.px(5, 8)
  assert not _has_color(chart.image, _ORANGE, (u - 20, v - 1, u + 20, v + 2))


def test_log_axis_puts_decades_equally_apart():
  chart = plotting.line_chart(
      [plotting.Series('loss', [1, 2, 3], [1.0, 10.0, 100.0])],
      size=(300, 200), log_y=True)
  assert chart.axes.log_y
  rows = [chart.axes.px(x, y)[1] for x, y in ((1, 1), (2, 10), (3, 100))]
  assert rows[0] > rows[1] > rows[2]
  assert rows[0] - rows[1] == pytest.approx(rows[1] - rows[2])
  assert _pixel(chart.image, chart.axes.px(2, 10)) == _BLUE
  assert _pixel(chart.image, chart.axes.px(1.5, 10 ** 0.5)) == _BLUE


def test_dot_chart_rows_values_and_missing_values():
  chart = plotting.dot_chart(['a', 'b', 'missing', 'd'],
                             [1.0, 2.0, np.nan, 3.0],
                             errors=[None, 0.5, None, None], width=300)
  image = chart.image
  assert image.width == 300
  for i, value in enumerate((1.0, 2.0, None, 3.0)):
    if value is not None:
      assert _pixel(image, chart.axes.px(value, i)) == _BLUE
  left, _, right, _ = chart.axes.box
  _, row = chart.axes.px(0, 2)
  assert not _has_color(image, _BLUE, (left + 1, row - 4, right, row + 5))
  # The whisker of b spans 1.5 .. 2.5.
  _, row = chart.axes.px(0, 1)
  for value in (1.6, 2.4):
    assert _pixel(image, (chart.axes.px(value, 1)[0], row)) == _BLUE
  with pytest.raises(ValueError, match='no finite value'):
    plotting.dot_chart(['a'], [np.nan])


def _write_metrics(path, records):
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_curves_from_metrics_jsonl(tmp_path):
  records = [{'step': s, 'train/loss': 100.0 / s, 'train/loss_l1': 10.0 / s,
              'train/grad_norm': 3.0, 'train/steps_per_second': 2.0}
             for s in (10, 20, 30, 40)]
  records += [{'step': 40, 'eval/a_to_b/ours/psnr': 30.0,
               'eval/a_to_b/identity/psnr': 20.0, 'eval/kl': 0.1},
              # A resumed run logs step 30 again: the later value counts.
              {'step': 30, 'train/loss': 2.0}]
  _write_metrics(tmp_path / 'metrics.jsonl', records)
  merged = figures.read_metrics(tmp_path / 'metrics.jsonl')
  assert [r['step'] for r in merged] == [10, 20, 30, 40]
  assert merged[2]['train/loss'] == 2.0 and merged[3]['eval/kl'] == 0.1
  panels = figures.curve_panels(merged)
  assert [p.title for p in panels] == ['training losses', 'evaluation: kl',
                                       'evaluation: psnr']
  assert [s.label for s in panels[0].series] == ['loss', 'loss_l1']
  assert panels[0].log_y and not panels[2].log_y  # 2 .. 10: no log
  assert [s.label for s in panels[2].series] == ['a_to_b/identity',
                                                 'a_to_b/ours']
  path = figures.write_curves(tmp_path)
  assert path == tmp_path / 'curves.png'
  image = Image.open(path).convert('RGB')
  # Three 480 x 300 panels in one row under a title line.
  assert image.size == (3 * (480 + 4) + 4, 15 + 6 + 300 + 2 * 4)
  assert _has_color(image, _BLUE, (4, 21, 484, 321))
  assert figures.write_curves(tmp_path / 'absent') is None


def test_curve_panels_of_a_method_with_two_train_steps():
  records = [{'step': s, 'train/generator_step/loss': 1.0 / s,
              'train/generator_step/loss_gan': 0.5,
              'train/discriminator_step/loss': 0.3,
              'train/discriminator_step/d_a_fake': 0.4,
              'train/discriminator_step/grad_norm_a': 5.0,
              'train/gcm_param_norm': 3.0,
              'train/anchor_psnr_a_to_b': 20.0 + s}
             for s in (1, 2)]
  panels = figures.curve_panels(records)
  assert [(p.title, [s.label for s in p.series]) for p in panels] == [
      ('training losses: discriminator_step', ['loss']),
      ('training losses: generator_step', ['loss', 'loss_gan']),
      ('training: discriminator_step', ['d_a_fake']),
      ('training: psnr', ['anchor_psnr_a_to_b'])]
  assert panels[3].ylabel == 'PSNR (dB)'


def test_read_metrics_skips_a_truncated_line_and_names_a_bad_one(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  # A killed run's half-written line, then the resumed run's records.
  path.write_text('{"step": 1, "train/loss": 1.0}\n{"step": 2, "tra\n'
                  '{"step": 2, "train/loss": 0.5, "eval/psnr": NaN}\n')
  assert figures.read_metrics(path)[1]['train/loss'] == 0.5
  # A NaN-only score has no panel.
  assert [p.title for p in figures.curve_panels(
      figures.read_metrics(path))] == ['training losses']
  path.write_text('{"step": 1, "train/loss": 1.0}\n{"train/loss": 2.0}\n')
  with pytest.raises(ValueError, match=r'metrics.jsonl:2'):
    figures.read_metrics(path)


def test_results_tables_and_figure(tmp_path):
  results = {
      'step': 5, 'dataset': 'd',
      'directions': {
          'a_to_b': {'title': 'A -> B', 'rows': {
              'identity': {'psnr': 20.0, 'psnr_std': None, 'mae': 0.1,
                           'repeats': 1},
              'ours': {'psnr': 30.0, 'psnr_std': 1.0, 'mae': float('nan'),
                       'repeats': 3}}},
          'b_to_a': {'title': 'B -> A', 'rows': {
              'ours': {'psnr': 28.0, 'mae': 0.05}}}},
      'per_image': [{'name': 'x', 'psnr': 1.0}]}
  tables = figures.results_tables(results)
  assert [t.title for t in tables] == ['A -> B', 'B -> A']
  ours = tables[0].rows['ours']
  assert ours['psnr'] == (30.0, 1.0) and np.isnan(ours['mae'][0])
  assert set(ours) == {'psnr', 'mae'}  # 'repeats' is bookkeeping
  assert tables[0].metrics == ['psnr', 'mae']
  # Written beside results.md by write_results; none without a table.
  eval_results.write_results(tmp_path, results, '# table\n')
  image = Image.open(tmp_path / 'results.png').convert('RGB')
  two = plotting.dot_chart(['identity', 'ours'], [20.0, 30.0],
                           errors=[None, 1.0]).image
  one = plotting.dot_chart(['ours'], [28.0]).image
  # A row of panels per table (2 rows of A -> B, 1 of B -> A), a column
  # per metric.
  assert image.size == (2 * (two.width + 4) + 4,
                        two.height + one.height + 3 * 4)
  assert _has_color(image, _BLUE, (0, 0, image.width, image.height // 2))
  eval_results.write_results(tmp_path, {'psnr': 1.0}, '# no table\n')
  assert not (tmp_path / 'results.png').exists()
  assert figures.write_results_figure({'psnr': 1.0}, tmp_path / 'x.png') is None


def test_docs_figures_from_a_workdir(tmp_path):
  workdir = tmp_path / 'runs' / 'raw2raw_semi'
  evaluation = workdir / 'eval' / 'step_00000040'
  evaluation.mkdir(parents=True)
  _write_metrics(workdir / 'metrics.jsonl', [
      {'step': s, 'train/loss': 1.0 / s} for s in (10, 20, 30, 40)])
  (evaluation / 'results.json').write_text(json.dumps({
      'step': 40, 'directions': {'a_to_b': {'title': 'A -> B', 'rows': {
          'identity': {'psnr': 20.0}, 'ours': {'psnr': 25.0}}}}}))
  rng = np.random.default_rng(0)
  # Noise does not compress: 400 x 400 RGB is about 480 kB as a PNG.
  Image.fromarray(rng.integers(0, 256, (400, 400, 3), np.uint8)).save(
      evaluation / 'grid_a_to_b.png')
  out = tmp_path / 'docs'
  out.mkdir()
  written = launch_figures.draw('raw2raw_semi', workdir, out,
                                max_bytes=100 * 1024)
  assert set(written) == {'raw2raw_semi_curves.png',
                          'raw2raw_semi_results.png', 'raw2raw_semi_grid.png'}
  assert written['raw2raw_semi_results.png']['step'] == 40
  for name, info in written.items():
    assert (out / name).stat().st_size <= 100 * 1024
    assert Image.open(out / name).size == tuple(info['size'])
  # The noise grid was shrunk (palette, 0.8x steps) to fit; the charts
  # were not.
  assert written['raw2raw_semi_grid.png']['size'][0] < 400
  assert written['raw2raw_semi_curves.png']['size'][0] == 480 + 2 * 4
  with pytest.raises(FileNotFoundError, match='no metrics.jsonl'):
    launch_figures.draw('kpn', tmp_path / 'runs' / 'kpn', out,
                        max_bytes=1024)


def test_first_grid_rows_keeps_the_titles_and_the_first_rows():
  rng = np.random.default_rng(2)
  rows = [[rng.uniform(0.1, 0.9, (32, 40, 3)).astype(np.float32)
           for _ in range(2)] for _ in range(3)]
  grid = rawjax_eval.labelled_grid(rows, column_titles=['in', 'out'],
                                   row_labels=['r0', 'r1', 'r2'])
  image = Image.fromarray(np.round(grid * 255).astype(np.uint8))
  cropped = launch_figures.first_grid_rows(image, 2)
  band = grid.shape[0] - 3 * (32 + 2) - 2  # the title band's height
  assert cropped.size == (image.width, band + 2 * (32 + 2) + 2)
  np.testing.assert_array_equal(np.asarray(cropped),
                                np.asarray(image)[:cropped.height])
  assert launch_figures.first_grid_rows(image, 5).size == image.size
