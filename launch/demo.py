"""Reads a camera raw file, renders it with rawjax, and checks it against LibRaw.

    python -m launch.demo [--raw FILE.dng] [--out DIR] [--demosaic bilinear]

Writes DIR/<name>_rawjax.png (rawjax `process`), <name>_libraw.png (LibRaw's
`postprocess` with the same settings), <name>_raw.png (the papers' raw
visualisation), and metrics.json / metrics.md comparing the two renderings
(PSNR, SSIM, mean CIEDE2000).
"""

from __future__ import annotations

import json
import pathlib
import time

from absl import app
from absl import flags
import jax
import numpy as np
import rawpy

from rawjax import io as rawio
from rawjax import isp, metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_RAW = ROOT.parent / 'shared/data/raw/gopro_hero6_black_crop1536x1152.dng'

_RAW = flags.DEFINE_string('raw', str(DEFAULT_RAW), 'Bayer raw file to render.')
_OUT = flags.DEFINE_string('out', 'out/demo', 'Output directory.')
_DEMOSAIC = flags.DEFINE_enum('demosaic', 'bilinear', ['bilinear', 'malvar'],
                              'Demosaicking algorithm.')


def libraw_reference(path: str) -> np.ndarray:
  """LibRaw's rendering with the settings `isp.process` reproduces."""
  with rawpy.imread(path) as raw:
    out = raw.postprocess(
        use_camera_wb=True, demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
        gamma=(2.4, 12.92), no_auto_bright=True, output_bps=16, user_flip=0,
        adjust_maximum_thr=0.0)
  return out.astype(np.float32) / 65535.0


def compare(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
  return dict(
      psnr_db=float(metrics.psnr(ours, reference)),
      ssim=float(metrics.ssim(ours, reference)),
      delta_e2000=float(metrics.mean_delta_e2000(isp.srgb_to_lab(ours),
                                                 isp.srgb_to_lab(reference))))


def main(argv):
  del argv
  out = pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  raw = rawio.read_raw(_RAW.value)
  name = pathlib.Path(_RAW.value).stem
  print(f'{name}: {raw.mosaic.shape[1]}x{raw.mosaic.shape[0]} {raw.pattern}, '
        f'black {raw.black_level.tolist()}, white {raw.white_level:g}, '
        f'colour from {raw.color_matrix_source}')

  process = jax.jit(isp.process, static_argnames='demosaic')
  start = time.perf_counter()
  rendered = jax.block_until_ready(
      process(raw.mosaic, raw.metadata(), demosaic=_DEMOSAIC.value))
  compile_and_run = time.perf_counter() - start
  start = time.perf_counter()
  rendered = np.asarray(jax.block_until_ready(
      process(raw.mosaic, raw.metadata(), demosaic=_DEMOSAIC.value)))
  run = time.perf_counter() - start
  reference = libraw_reference(_RAW.value)

  results = dict(file=_RAW.value, demosaic=_DEMOSAIC.value,
                 run_seconds=run, compile_seconds=compile_and_run - run,
                 vs_libraw=compare(rendered, reference))
  rawio.write_image(out / f'{name}_rawjax.png', rendered)
  rawio.write_image(out / f'{name}_libraw.png', reference)
  packed = isp.normalize(isp.pack(raw.mosaic, pattern=raw.pattern),
                         black_level=raw.black_level,
                         white_level=raw.white_level)
  rawio.write_image(out / f'{name}_raw.png', isp.visualize_raw(packed))
  (out / 'metrics.json').write_text(json.dumps(results, indent=2))
  table = '\n'.join([
      '| file | demosaic | PSNR vs LibRaw (dB) | SSIM | mean dE2000 | run (s) |',
      '|---|---|---|---|---|---|',
      f"| {name} | {_DEMOSAIC.value} | {results['vs_libraw']['psnr_db']:.2f} | "
      f"{results['vs_libraw']['ssim']:.4f} | "
      f"{results['vs_libraw']['delta_e2000']:.3f} | {run:.3f} |"])
  (out / 'metrics.md').write_text(table + '\n')
  print(table)
  print(f'wrote {out}/{name}_rawjax.png, {name}_libraw.png, {name}_raw.png, '
        'metrics.json, metrics.md')


if __name__ == '__main__':
  app.run(main)
