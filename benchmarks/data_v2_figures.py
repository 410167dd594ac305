"""Figures of the second-generation embedded data (docs/data.md, issue 15).

    python benchmarks/data_v2_figures.py [--scenes 16] [--fit-scenes 8]
        [--size 256] [--steps 300] [--json PATH] [--figures docs/figures]

Prints a JSON summary and markdown tables and writes the sample grids:
  1. the relative RMS of a least-squares 3x3 between camera pairs of the
     registry on the 24 ColorChecker spectra, fitted per illuminant and the
     D65 fit applied under 7 illuminants;
  2. on `multi_illum` and `multi_illum_v2` test scenes: one global 3x3
     (fitted to all scenes' pixels), a per-image 16-term polynomial and a
     per-patch 3x3 oracle (16 x 16 packed pixels, fitted to the ground
     truth), PSNR and Delta E 2000 on packed raw;
  3. on `raw2srgb` and `raw2srgb_v2`: the best per-image PQDynamicISP fit
     (its 36 global parameters by Adam, from the noise-free and from the
     noisy raw) and `rawjax.isp.process` against the sRGB targets;
  4. `samples.png` of each new preset, copied to
     docs/figures/data_v2_<preset>_samples.png.

The registry data (../shared/data/ssf, CC BY-NC-SA 4.0) are read from their
folder (`rawjax.data.synthetic.default_ssf_dir`).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import shutil
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from rawjax import baselines, isp, metrics  # noqa: E402
from rawjax.data import _spectra, synthetic  # noqa: E402
from rawjax.isp import pqdynamic, shading  # noqa: E402

ILLUMINANTS = ('D65', 'D50', 'A', 'FL2', 'FL11', 'LED-B4', 'LED-V1')
PAIRS = (
    ('nikon-5100', 'sigma-sdmerill'),
    ('nokia-n900', 'nikon-d5100'),
    ('nokia-n900', 'canon-5dmarkii'),
    ('canon-5dmarkii', 'nikon-d700'),
    ('point-grey-grasshopper2-14s5c', 'canon-5dmarkii'),
    ('olympus-e-pl2', 'nikon-d3x'),
    ('hasselblad-h2', 'phase-one-unspecified'),
    ('nikon-d50', 'nikon-d50-spectroscope'),
)
PATCH = 16


def _relative_rms(source, target, matrix):
  residual = source @ matrix - target
  return float(np.sqrt((residual**2).sum() / (target**2).sum()))


def _lstsq(source, target):
  return np.linalg.lstsq(source, target, rcond=None)[0]


def spectral_table() -> list[dict]:
  """Relative RMS of the 3x3 between camera pairs on the 24 Ohta spectra."""
  _, library = _spectra.reflectance_library()
  lights = _spectra.named_illuminants(ILLUMINANTS)
  rows = []
  for a, b in PAIRS:
    ca, cb = synthetic.camera_profile(a), synthetic.camera_profile(b)
    responses = [((library[:24] * light) @ ca.sensitivities,
                  (library[:24] * light) @ cb.sensitivities)
                 for light in lights]
    d65 = _lstsq(*responses[0])
    per, fixed = [], []
    for x, y in responses:
      per.append(_relative_rms(x, y, _lstsq(x, y)))
      fixed.append(_relative_rms(x, y, d65))
    rows.append({'source': ca.name, 'target': cb.name,
                 'per_illuminant': float(np.mean(per)),
                 'd65_fit': float(np.mean(fixed))})
  return rows


_patch_oracle = jax.jit(functools.partial(baselines.patch_oracle, patch=PATCH))


@jax.jit
def _image_fit(source, target):
  matrix = baselines.fit_image_mapping(source, target, kernel='raw2raw16')
  return baselines.apply_mapping(source, matrix, kernel='raw2raw16')


def mapping_table(preset: str, *, scenes: int, size: int,
                  seed: int = 7) -> list[dict]:
  """Global 3x3, per-image 16-term and per-patch 3x3 oracle on a preset."""
  config = synthetic.PRESETS[preset].replace(height=size, width=size)
  captured = list(synthetic.generate_scenes(seed, scenes, config=config))
  slugs = list(captured[0].captures)
  rows = []
  for a, b in (slugs, slugs[::-1]):
    source = np.stack([s.captures[a].packed for s in captured])
    target = np.stack([s.captures[b].packed for s in captured])
    wb = np.stack([np.asarray(s.captures[b].metadata.wb_gains)
                   for s in captured]).astype(np.float32)
    ccm = np.stack([np.asarray(s.captures[b].metadata.cam_to_srgb)
                    for s in captured]).astype(np.float32)
    global_matrix = baselines.fit_global_mapping(source, target,
                                                 kernel='linear', channels=3)
    predictions = {
        'global 3x3 (all scenes)': baselines.apply_mapping(
            source, global_matrix, kernel='linear'),
        'per-image 16-term (oracle)': jnp.stack(
            [_image_fit(x, y) for x, y in zip(source, target)]),
        f'per-patch 3x3 ({PATCH}x{PATCH} oracle)': jnp.stack(
            [_patch_oracle(x, y) for x, y in zip(source, target)]),
    }
    for method, prediction in predictions.items():
      scores = baselines.evaluate(prediction, target, wb, ccm)
      rows.append({'preset': preset, 'direction': f'{a} -> {b}',
                   'method': method, 'n': scenes,
                   'psnr': float(np.mean(scores['psnr'])),
                   'delta_e2000': float(np.mean(scores['delta_e2000']))})
  return rows


def _downsample2(x):
  h, w = x.shape[0] // 2, x.shape[1] // 2
  return x[:2 * h, :2 * w].reshape(h, 2, w, 2, -1).mean((1, 3))


def _pq_fit(raw_rgb, target, *, steps: int, lr: float = 0.05):
  """Best PSNR of PQDynamicISP's global parameters fitted by Adam."""
  import optax  # pylint: disable=g-import-not-at-top

  def loss(z):
    params = pqdynamic.params_from_unconstrained(z)
    return jnp.mean((pqdynamic.isp_forward(raw_rgb, params) - target)**2)

  optimizer = optax.adam(lr)

  @jax.jit
  def step(z, state):
    value, grad = jax.value_and_grad(loss)(z)
    updates, state = optimizer.update(grad, state)
    return optax.apply_updates(z, updates), state, value

  z = jnp.zeros((pqdynamic.NUM_PARAMS,), jnp.float32)
  state = optimizer.init(z)
  best = np.inf
  for _ in range(steps):
    z, state, value = step(z, state)
    best = min(best, float(value))
  best = min(best, float(loss(z)))
  return float(10 * np.log10(1.0 / max(best, 1e-12)))


def _fit_input(capture):
  """White-balanced, flat-field-corrected raw RGB (packed resolution)."""
  packed = capture.packed
  if capture.falloff is not None and not capture.shading_corrected:
    # The fit sees flat-field-corrected raw: the comparison is about the
    # rendering, not about the lens.
    packed = np.asarray(shading.correct_shading(packed, capture.falloff))
  gains = np.asarray(capture.metadata.wb_gains, np.float32)
  return jnp.clip(isp.packed_to_rgb(packed) * (gains / gains.min()), 0.0, 1.0)


def srgb_table(preset: str, *, scenes: int, size: int, steps: int,
               seed: int = 11) -> list[dict]:
  """PQDynamicISP fits and `isp.process` against a preset's sRGB targets.

  The PQDynamicISP fit runs twice: on the noise-free raw (does the family
  contain the rendering?) and on the preset's noisy raw (what a network
  sees). `process` renders the noisy mosaic with its metadata (gain map
  included).
  """
  config = synthetic.PRESETS[preset].replace(height=size, width=size)
  clean_config = config.replace(noise=False)
  rows = []
  process = jax.jit(isp.process)
  for index in range(scenes):
    scene = synthetic.generate_scene(seed, index, config=config)
    clean = synthetic.generate_scene(seed, index, config=clean_config)
    for slug, capture in scene.captures.items():
      target = _downsample2(capture.srgb)
      rendered = process(capture.mosaic, capture.metadata)
      rows.append({
          'preset': preset, 'camera': slug, 'scene': scene.index,
          'content': scene.content,
          'pq_fit_clean_psnr': _pq_fit(_fit_input(clean.captures[slug]),
                                       target, steps=steps),
          'pq_fit_psnr': _pq_fit(_fit_input(capture), target, steps=steps),
          'process_psnr': float(metrics.psnr(rendered, capture.srgb))})
  return rows


def _summarise_srgb(rows):
  groups = {}
  for row in rows:
    groups.setdefault((row['preset'], row['camera']), []).append(row)
  keys = ('pq_fit_clean_psnr', 'pq_fit_psnr', 'process_psnr')
  out = []
  for (preset, camera), group in groups.items():
    entry = {'preset': preset, 'camera': camera, 'n': len(group)}
    for key in keys:
      entry[key] = float(np.mean([r[key] for r in group]))
    entry['pq_fit_clean_psnr_max'] = float(
        np.max([r['pq_fit_clean_psnr'] for r in group]))
    out.append(entry)
  return out


def sample_figures(folder: pathlib.Path, *, size: int) -> list[str]:
  """Writes each new preset's sample grid into `folder`."""
  written = []
  folder.mkdir(parents=True, exist_ok=True)
  for preset in ('raw2raw_v2', 'multi_illum_v2', 'raw2srgb_v2'):
    with tempfile.TemporaryDirectory() as tmp:
      config = synthetic.PRESETS[preset].replace(height=size, width=size)
      synthetic.write_dataset(tmp, preset=preset, num=12, seed=3,
                              config=config, samples=3, progress=False)
      path = folder / f'data_v2_{preset}_samples.png'
      shutil.copy(pathlib.Path(tmp) / 'samples.png', path)
      written.append(str(path))
  return written


def _table(rows, columns):
  lines = ['| ' + ' | '.join(columns) + ' |',
           '|' + '---|' * len(columns)]
  for row in rows:
    lines.append('| ' + ' | '.join(
        f'{row[c]:.2f}' if isinstance(row[c], float) and c in (
            'psnr', 'delta_e2000', 'pq_fit_psnr', 'pq_fit_clean_psnr',
            'pq_fit_clean_psnr_max', 'process_psnr') else
        f'{100 * row[c]:.2f} %' if isinstance(row[c], float) else
        str(row[c]) for c in columns) + ' |')
  return '\n'.join(lines)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--scenes', type=int, default=16,
                      help='multi_illum scenes per preset')
  parser.add_argument('--fit-scenes', type=int, default=6,
                      help='raw2srgb scenes per preset')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--steps', type=int, default=300,
                      help='Adam steps of the PQDynamicISP fit')
  parser.add_argument('--json', default='benchmarks/results/data_v2.json')
  parser.add_argument('--figures', default='docs/figures')
  parser.add_argument('--skip', nargs='*', default=(),
                      choices=('spectral', 'mapping', 'srgb', 'samples'))
  args = parser.parse_args(argv)
  result = {}
  start = time.perf_counter()
  if 'spectral' not in args.skip:
    result['spectral_3x3'] = spectral_table()
    print(_table(result['spectral_3x3'],
                 ('source', 'target', 'per_illuminant', 'd65_fit')))
  if 'mapping' not in args.skip:
    rows = []
    for preset in ('multi_illum', 'multi_illum_v2'):
      rows += mapping_table(preset, scenes=args.scenes, size=args.size)
    result['mapping'] = rows
    print(_table(rows, ('preset', 'direction', 'method', 'n', 'psnr',
                        'delta_e2000')))
  if 'srgb' not in args.skip:
    rows = []
    for preset in ('raw2srgb', 'raw2srgb_v2'):
      rows += srgb_table(preset, scenes=args.fit_scenes, size=args.size,
                         steps=args.steps)
    result['srgb_per_image'] = rows
    result['srgb'] = _summarise_srgb(rows)
    print(_table(result['srgb'], ('preset', 'camera', 'n',
                                  'pq_fit_clean_psnr',
                                  'pq_fit_clean_psnr_max', 'pq_fit_psnr',
                                  'process_psnr')))
  if 'samples' not in args.skip:
    result['figures'] = sample_figures(pathlib.Path(args.figures),
                                       size=args.size)
  result['seconds'] = time.perf_counter() - start
  path = pathlib.Path(args.json)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(result, indent=1))
  print(json.dumps({k: v for k, v in result.items()
                    if k != 'srgb_per_image'}, indent=1))
  return result


if __name__ == '__main__':
  main()
