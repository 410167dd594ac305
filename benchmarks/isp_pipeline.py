"""Throughput of the demosaics and of `process` on a 12 MP mosaic.

Compares rawjax (jitted, compile time reported apart) with colour-demosaicing
(bilinear, Malvar 2004) and with LibRaw's `rawpy.postprocess` (linear
demosaic, camera white balance, 16-bit, sRGB gamma, no auto-brightness) on the
same image: a 4000 x 3000 RGGB mosaic tiled from the real Blackmagic DNG in
../shared/data/raw (or random data when it is absent), written as a DNG so
LibRaw reads exactly the values rawjax processes.

    python benchmarks/isp_pipeline.py [--repeats 5] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/isp_pipeline.json).
"""

from __future__ import annotations

import json
import pathlib
import platform
import tempfile
import warnings

import jax
import numpy as np
import rawpy

import _timing  # benchmarks/_timing.py
from _timing import time_call
from rawjax import io as rawio
from rawjax import isp, metrics

ROOT = _timing.ROOT
BLACKMAGIC = ROOT.parent / 'shared/data/raw/blackmagic_pocket_cinema_4k_12bit.dng'
HEIGHT, WIDTH = 3000, 4000


def _mosaic() -> tuple[np.ndarray, str]:
  if BLACKMAGIC.exists():
    source = rawpy.imread(str(BLACKMAGIC)).raw_image_visible
    # Tiling whole even-sized blocks keeps the RGGB phase.
    block = source[:HEIGHT // 2, :WIDTH // 2]
    return np.tile(block, (2, 2)), f'{BLACKMAGIC.name}, tiled 2x2'
  rng = np.random.default_rng(0)
  return (rng.random((HEIGHT, WIDTH)) * 60000 + 512).astype(np.uint16), 'random'


def main() -> None:
  parser = _timing.argument_parser(__doc__, 'isp_pipeline', repeats=5)
  parser.add_argument('--reference-repeats', type=int, default=2)
  args = parser.parse_args()

  mosaic, source = _mosaic()
  megapixels = mosaic.size / 1e6
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / 'bench.dng'
    rawio.write_dng(path, mosaic, pattern='RGGB', black_level=512,
                    white_level=65535,
                    color_matrix=[[0.68795, -0.24747, -0.04866],
                                  [-0.39256, 1.20114, 0.15793],
                                  [-0.08916, 0.20063, 0.58148]],
                    as_shot_neutral=[0.4533, 1.0, 0.53])
    raw = rawio.read_raw(path)
    libraw = rawpy.imread(str(path))
    postprocess = lambda: libraw.postprocess(  # noqa: E731
        use_camera_wb=True, demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
        gamma=(2.4, 12.92), no_auto_bright=True, output_bps=16, user_flip=0,
        adjust_maximum_thr=0.0)
    libraw_first, libraw_run = time_call(postprocess, args.reference_repeats)
    libraw_out = postprocess().astype(np.float32) / 65535.0

  metadata = raw.metadata()
  device_mosaic = jax.device_put(mosaic)
  flat = jax.device_put(np.asarray(isp.normalize(
      isp.pack(mosaic.astype(np.float32), pattern='RGGB'), black_level=512,
      white_level=65535)))
  flat = jax.block_until_ready(isp.unpack(flat, pattern='RGGB'))
  flat_np = np.asarray(flat)

  rows = []

  def add(name, fn, reference=None, reference_fn=None):
    first, run = time_call(fn, args.repeats)
    row = dict(name=name, compile_s=first - run, run_s=run,
               mp_per_s=megapixels / run)
    if reference_fn is not None:
      with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        _, ref_run = time_call(reference_fn, args.reference_repeats)
      row.update(reference=reference, reference_run_s=ref_run,
                 reference_mp_per_s=megapixels / ref_run,
                 speedup=ref_run / run)
    rows.append(row)

  import colour_demosaicing  # pylint: disable=g-import-not-at-top
  bilinear = jax.jit(lambda x: isp.demosaic_bilinear(x, pattern='RGGB'))
  malvar = jax.jit(lambda x: isp.demosaic_malvar(x, pattern='RGGB'))
  add('demosaic_bilinear', lambda: bilinear(flat), 'colour-demosaicing bilinear',
      lambda: colour_demosaicing.demosaicing_CFA_Bayer_bilinear(flat_np, 'RGGB'))
  add('demosaic_malvar', lambda: malvar(flat), 'colour-demosaicing Malvar2004',
      lambda: colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004(flat_np,
                                                                  'RGGB'))
  process = jax.jit(isp.process)
  add('process (bilinear)', lambda: process(device_mosaic, metadata))
  rows[-1].update(reference='rawpy.postprocess (LibRaw linear, 16-bit)',
                  reference_run_s=libraw_run,
                  reference_mp_per_s=megapixels / libraw_run,
                  speedup=libraw_run / rows[-1]['run_s'])
  ours = np.asarray(process(device_mosaic, metadata))
  agreement = float(metrics.psnr(ours, libraw_out))

  report = dict(
      benchmark='isp_pipeline', image=source, shape=list(mosaic.shape),
      megapixels=megapixels, repeats=args.repeats,
      jax=jax.__version__, rawpy=rawpy.__version__,
      libraw=rawpy.libraw_version, machine=platform.machine(),
      cpu_count=__import__('os').cpu_count(),
      process_vs_libraw_psnr_db=agreement, rows=rows)
  args.json.parent.mkdir(parents=True, exist_ok=True)
  args.json.write_text(json.dumps(report, indent=2))

  print(f'# isp_pipeline: {mosaic.shape[1]}x{mosaic.shape[0]} '
        f'({megapixels:.1f} MP), {source}\n')
  print('| stage | compile (s) | run (s) | MP/s | reference | ref run (s) | '
        'ref MP/s | speed-up |')
  print('|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['name']} | {r['compile_s']:.2f} | {r['run_s']:.3f} | "
          f"{r['mp_per_s']:.1f} | {r.get('reference', '')} | "
          f"{r.get('reference_run_s', float('nan')):.3f} | "
          f"{r.get('reference_mp_per_s', float('nan')):.1f} | "
          f"{r.get('speedup', float('nan')):.1f}x |")
  print(f'\nprocess vs rawpy.postprocess on the same image: '
        f'PSNR {agreement:.2f} dB')
  print(f'JSON: {args.json}')
  print(json.dumps(report))


if __name__ == '__main__':
  main()
