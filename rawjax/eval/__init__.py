"""Evaluation shared by the methods: scores, results files, titled grids.

  * `rawjax.eval.scoring`: per-image PSNR / SSIM / MAE / DeltaE 2000 / KL
    of image pairs, and results rows (mean, std over repeats or images);
  * `rawjax.eval.results`: results.json / results.md, Markdown tables;
  * `rawjax.eval.images`: comparison grids with titled columns and row
    labels, error maps;
  * `rawjax.eval.raw2raw`: the raw-to-raw evaluation both raw-to-raw
    methods use (paired test images with metadata, calibration baselines).
"""

from rawjax.eval.images import (
    error_map, image_grid, labelled_grid, write_image_rows)
from rawjax.eval.results import (
    markdown_table, metric_cells, scalars, to_builtin, write_default_results,
    write_results)
from rawjax.eval.scoring import SCORES, image_scores, score_images, summarize

__all__ = [
    'SCORES', 'error_map', 'image_grid', 'image_scores', 'labelled_grid',
    'markdown_table', 'metric_cells', 'scalars', 'score_images', 'summarize',
    'to_builtin', 'write_default_results', 'write_image_rows',
    'write_results',
]
