"""Writing a simulated dataset in the Afifi & Abuolaim raw2raw layout."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Sequence

import jax
import numpy as np

from rawjax.data import _spectra
from rawjax.data.synthetic.cameras import CameraProfile
from rawjax.data.synthetic.presets import SceneConfig, _config
from rawjax.data.synthetic.render import (
    Capture, Scene, _generate_scene, scene_cameras)


def _splits(num, seed, anchor_fraction, test_fraction, num_cameras):
  """Scene-disjoint split of range(num) into anchor, test and unpaired."""
  order = np.random.default_rng([int(seed), 2**31 - 1]).permutation(num)
  anchors = max(int(round(num * anchor_fraction)), 2 if num >= 8 else 1)
  tests = max(int(round(num * test_fraction)), 1)
  if anchors + tests + num_cameras > num:
    raise ValueError(f'write_dataset: {num} scenes are too few for '
                     f'{anchors} anchor, {tests} test and unpaired scenes '
                     f'for {num_cameras} cameras.')
  anchor = sorted(order[:anchors].tolist())
  test = sorted(order[anchors:anchors + tests].tolist())
  rest = sorted(order[anchors + tests:].tolist())
  unpaired = [rest[i::num_cameras] for i in range(num_cameras)]
  return anchor, test, unpaired


def _save_capture(folder: pathlib.Path, name: str, file_name: str,
                  capture: Capture, scene: Scene, *, anchor: bool,
                  write_dng: bool, write_srgb: bool,
                  mapping: np.ndarray | None):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_dng as dng_writer  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
  prefix = 'anchor-' if anchor else ''
  camera = capture.camera
  if write_dng:
    (folder / 'dng').mkdir(parents=True, exist_ok=True)
    dng_writer(folder / 'dng' / f'{name}.dng', capture.mosaic,
               pattern=camera.pattern, black_level=camera.black_level,
               white_level=camera.white_level,
               color_matrix=capture.xyz_to_camera, calibration_illuminant=21,
               as_shot_neutral=1.0 / np.asarray(capture.metadata.wb_gains),
               camera_model=camera.name,
               gain_maps=capture.gain_maps() or None)
  if mapping is not None:
    (folder / 'mapping').mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(folder / 'mapping' / f'{name}.mat',
                     {'mapping_matrix': mapping.astype(np.float64)})
  for sub in (f'{prefix}raw-rggb', f'{prefix}vis', 'meta'):
    (folder / sub).mkdir(parents=True, exist_ok=True)
  scipy_io.savemat(folder / f'{prefix}raw-rggb' / f'{file_name}.mat',
                   {'raw_rggb': capture.packed})
  Image.fromarray(capture.vis).save(folder / f'{prefix}vis' /
                                    f'{file_name}.jpg', quality=95)
  if write_srgb:
    (folder / 'srgb').mkdir(parents=True, exist_ok=True)
    write_image(folder / 'srgb' / f'{file_name}.png', capture.srgb,
                bit_depth=8)
  illumination = scene.illumination_map.reshape(
      scene.illumination_map.shape[0] // 2, 2,
      scene.illumination_map.shape[1] // 2, 2, -1).mean((1, 3))
  metadata = capture.metadata
  extra = {}
  if capture.falloff is not None:
    extra = {'shading_falloff': capture.falloff,
             'shading_corrected': capture.shading_corrected}
  np.savez(
      folder / 'meta' / f'{file_name}.npz', **extra,
      mosaic=capture.mosaic, pattern=camera.pattern,
      black_level=np.asarray(metadata.black_level),
      white_level=np.asarray(metadata.white_level),
      wb_gains=np.asarray(metadata.wb_gains),
      cam_to_srgb=np.asarray(metadata.cam_to_srgb),
      xyz_to_camera=capture.xyz_to_camera,
      illuminant_rgb=capture.illuminant_rgb,
      illumination_map=illumination.astype(np.float32),
      illuminants=np.array(scene.illuminants),
      illuminant_spectra=scene.illuminant_spectra.astype(np.float32),
      wavelengths=_spectra.WAVELENGTHS,
      chart_boxes=(scene.chart_boxes if scene.chart_boxes is not None else
                   np.zeros((0, 4), np.int32)),
      srgb=np.round(capture.srgb * 255).astype(np.uint8),
      content=scene.content, exposure=capture.exposure,
      shot_noise=capture.shot_noise, read_noise=capture.read_noise,
      scene_index=scene.index)


_MAPPING_FIT = None


def _mapping_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """The per-image 16 x 4 raw2raw polynomial (kernelP) from source to target."""
  global _MAPPING_FIT
  if _MAPPING_FIT is None:
    from rawjax.isp import polynomial  # pylint: disable=g-import-not-at-top
    _MAPPING_FIT = jax.jit(lambda s, t: polynomial.fit_polynomial(
        s.reshape(-1, 4), t.reshape(-1, 4), kernel='raw2raw16'))
  return np.asarray(_MAPPING_FIT(source, target), np.float64)


def write_dataset(out: str | os.PathLike[str], *, preset: str = 'raw2raw',
                  num: int = 300, seed: int = 0,
                  config: SceneConfig | None = None,
                  cameras: Sequence[CameraProfile | str] | None = None,
                  anchor_fraction: float = 22 / 529,
                  test_fraction: float = 115 / 529,
                  srgb: bool | None = None, progress: bool = True,
                  samples: int | None = None) -> dict:
  """Writes a simulated dataset in the Afifi & Abuolaim raw2raw layout.

  The raw2raw download plus its `raw_extraction.py` outputs, for N cameras
  (the first gets the file postfix `_A`, the second `_B`, ...):

      DIR/dataset.json                     config, cameras, splits
      DIR/paired/<camera>/dng/<name>.dng   scenes of origin <camera>
      DIR/paired/<camera>/mapping/<name>.mat
          'mapping_matrix' (16, 4): this scene's least-squares kernelP
          polynomial from <camera> to the next camera (what Afifi ships)
      DIR/paired/<camera>/anchor-raw-rggb/<name>_<X>.mat   anchor pairs
      DIR/paired/<camera>/raw-rggb/<name>_<X>.mat          test pairs
          'raw_rggb' (H/2, W/2, 4) float32 in [0, 1]; <X> is the postfix of
          the scene's origin camera, and every camera folder holds the same
          names, so `paired/A/raw-rggb/n_A.mat` -> `paired/B/raw-rggb/n_A.mat`
          is an A -> B test pair. Unlike Afifi's pseudo ground truth (the
          origin mapped by the polynomial), the other camera's file is its
          own rendering of the scene.
      DIR/paired/<camera>/{anchor-vis,vis}/<name>_<X>.jpg
      DIR/unpaired/<camera>/{dng,raw-rggb,vis}/...   one camera per scene
      DIR/{paired,unpaired}/<camera>/meta/<file>.npz  everything else:
          mosaic, pattern, levels, wb_gains, cam_to_srgb, xyz_to_camera,
          illumination map (packed resolution), illuminants, chart boxes,
          8-bit sRGB, noise levels
      DIR/{paired,unpaired}/<camera>/srgb/<file>.png  (if `srgb`)

  Anchor, test and unpaired scenes are disjoint; by default their shares
  are the raw2raw dataset's (22 anchor and 115 test pairs among 529 scenes;
  the unpaired rest split evenly between the cameras).

  Args:
    out: output folder (created).
    preset: a `PRESETS` name (the `SceneConfig`).
    num: number of scenes.
    seed: dataset seed.
    config: overrides the preset's `SceneConfig` (e.g. another size).
    cameras: two or more cameras (default: `config.cameras`, else the two
      colour-science cameras).
    anchor_fraction, test_fraction: shares of paired anchor and test scenes.
    srgb: write sRGB PNGs (default: only for the raw2srgb presets).
    progress: show a tqdm progress bar.
    samples: write DIR/samples.png, a grid of this many paired scenes
      (`sample_grid`); default 4 for the second-generation presets, else 0.

  Returns:
    The contents of `dataset.json`.
  """
  config = config or _config(preset)
  cameras = scene_cameras(config, cameras)
  if len(cameras) < 2:
    raise ValueError('write_dataset: the raw2raw layout needs two or more '
                     'cameras.')
  if len({c.slug for c in cameras}) != len(cameras):
    raise ValueError('write_dataset: camera slugs must be distinct.')
  srgb = preset.startswith('raw2srgb') if srgb is None else srgb
  if samples is None:
    samples = 4 if preset.endswith('_v2') else 0
  sample_scenes = []
  postfix = {c.slug: chr(ord('A') + i) for i, c in enumerate(cameras)}
  anchor, test, unpaired = _splits(num, seed, anchor_fraction, test_fraction,
                                   len(cameras))
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  name_of = lambda i: f'scene-{i:05d}'  # noqa: E731

  jobs = []  # (index, kind, origin camera position)
  for position, index in enumerate(anchor):
    jobs.append((index, 'anchor', position % len(cameras)))
  for position, index in enumerate(test):
    jobs.append((index, 'test', position % len(cameras)))
  for camera_position, indices in enumerate(unpaired):
    jobs += [(index, 'unpaired', camera_position) for index in indices]
  jobs.sort()

  splits = {'anchor': [], 'test': [],
            'unpaired': {c.slug: [] for c in cameras}}
  iterator = jobs
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(jobs, desc=f'{preset} scenes', unit='scene')
  start = time.perf_counter()
  for index, kind, origin in iterator:
    name = name_of(index)
    if kind == 'unpaired':
      camera = cameras[origin]
      scene = _generate_scene(seed, index, config, cameras, [camera.slug],
                              unlabelled=True)
      file_name = f'{name}_{postfix[camera.slug]}'
      _save_capture(out / 'unpaired' / camera.slug, name, file_name,
                    scene.captures[camera.slug], scene, anchor=False,
                    write_dng=True, write_srgb=srgb, mapping=None)
      splits['unpaired'][camera.slug].append(file_name)
      continue
    scene = _generate_scene(seed, index, config, cameras,
                            [c.slug for c in cameras])
    origin_camera = cameras[origin]
    file_name = f'{name}_{postfix[origin_camera.slug]}'
    partner = cameras[(origin + 1) % len(cameras)]
    mapping = _mapping_matrix(scene.captures[origin_camera.slug].packed,
                              scene.captures[partner.slug].packed)
    for camera in cameras:
      is_origin = camera is origin_camera
      _save_capture(out / 'paired' / camera.slug, name, file_name,
                    scene.captures[camera.slug], scene,
                    anchor=kind == 'anchor', write_dng=is_origin,
                    write_srgb=srgb, mapping=mapping if is_origin else None)
    if len(sample_scenes) < samples:
      sample_scenes.append(scene)
    splits[kind].append({'name': name, 'file': file_name,
                         'origin': origin_camera.slug,
                         'multi_illuminant': scene.multi_illuminant,
                         'chart': scene.chart_boxes is not None})
  elapsed = time.perf_counter() - start

  summary = {
      'generator': 'rawjax.data.synthetic', 'preset': preset, 'seed': seed,
      'num_scenes': num, 'seconds': elapsed,
      'config': dataclasses.asdict(config),
      'cameras': [_camera_summary(c, postfix[c.slug], config)
                  for c in cameras],
      'splits': splits,
  }
  if sample_scenes:
    sample_grid(sample_scenes, out / 'samples.png',
                title=f'{preset}, seed {seed}')
    summary['samples'] = 'samples.png'
  (out / 'dataset.json').write_text(json.dumps(summary, indent=1))
  return summary


def _camera_summary(camera: CameraProfile, postfix: str,
                    config: SceneConfig) -> dict:
  summary = {'name': camera.name, 'slug': camera.slug, 'postfix': postfix,
             'pattern': camera.pattern, 'black_level': camera.black_level,
             'white_level': camera.white_level,
             'xyz_to_camera': camera.xyz_to_camera.tolist()}
  if config.cameras is not None or config.shading:
    # Only for the registry/shading settings: the first-generation presets'
    # dataset.json stays as it was.
    summary.update(
        kind=camera.kind, bit_depth=camera.bit_depth,
        noise_scale=camera.noise_scale, source=camera.source,
        shading=(dataclasses.asdict(camera.shading)
                 if config.shading and camera.shading else None))
  return summary


def sample_grid(scenes: Sequence[Scene], path: str | os.PathLike[str], *,
                title: str = '', tile: int = 128) -> None:
  """Writes a PNG grid: per scene, each camera's raw and its sRGB target.

  Columns (titled): for each camera its raw visualisation ((0.9 x)^(1/1.6)
  of the packed raw, so lens shading shows as dark corners) and, when the
  raw was shaded, its green falloff (white = 1, black = 0); then the first
  camera's sRGB target. One row per scene, tiles of `tile` pixels.
  """
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  first = scenes[0]
  slugs = list(first.captures)
  columns = []
  for slug in slugs:
    columns.append((f'{slug} raw', lambda s, k=slug: s.captures[k].vis))
    if first.captures[slug].falloff is not None:
      columns.append((f'{slug} G falloff', lambda s, k=slug: np.repeat(
          np.round(255 * s.captures[k].falloff[..., 1:2]).astype(np.uint8),
          3, -1)))
  columns.append((f'sRGB target ({slugs[0]})', lambda s: np.round(
      255 * np.clip(s.captures[slugs[0]].srgb, 0, 1)).astype(np.uint8)))
  head, gap = 28 if title else 16, 2
  width = len(columns) * (tile + gap) - gap
  grid = Image.new('RGB', (width, head + len(scenes) * (tile + gap)),
                   (255, 255, 255))
  draw = ImageDraw.Draw(grid)
  if title:
    draw.text((2, 0), title, fill=(0, 0, 0))
  for c, (name, _) in enumerate(columns):
    draw.text((c * (tile + gap) + 2, head - 13), name, fill=(0, 0, 0))
  for r, scene in enumerate(scenes):
    for c, (_, image_of) in enumerate(columns):
      image = Image.fromarray(np.ascontiguousarray(image_of(scene)))
      grid.paste(image.resize((tile, tile), Image.BILINEAR),
                 (c * (tile + gap), head + r * (tile + gap)))
  grid.save(path, optimize=True)
