"""Rendering and capture: spectra -> camera responses -> raw, sRGB."""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data import _spectra
from rawjax.data.synthetic.cameras import (
    DEFAULT_CAMERAS, CameraProfile, resolve_cameras)
from rawjax.data.synthetic.content import (
    _catalogue_content, _dead_leaves, _natural_content, _place_chart)
from rawjax.data.synthetic.illuminants import _light_maps, _sample_illuminants
from rawjax.data.synthetic.presets import SceneConfig, _config
from rawjax.isp import cfa, color, levels, noise as noise_lib
from rawjax.isp import demosaic as demosaic_lib
from rawjax.isp.metadata import RawMetadata

HIGHEST = jax.lax.Precision.HIGHEST
_D65_WHITE_XYZ = color.xy_to_xyz_np(color.D65_XY)
_MAX_LIGHTS = 3


@jax.jit
def _render_radiance(indices, weights, maps, table):
  """Mixes the responses of the library spectra per pixel.

  Args:
    indices, weights: (H, W, 4) library indices and convex weights.
    maps: (H, W, J) irradiance of each illuminant.
    table: (K, J, C) response of library spectrum k under illuminant j in
      each channel (CIE XYZ, then every camera's R, G, B).

  Returns:
    (H, W, C - 3) camera responses before exposure, and the (H, W)
    exposure reference: the largest channel of the D65-white-normalised XYZ.
  """
  # Four gathers of (J, C) rows beat one gather of (4, J, C) blocks and an
  # einsum by about 6x on XLA CPU.
  mixed = 0.0
  for k in range(indices.shape[-1]):
    mixed = mixed + weights[..., k, None, None] * table[indices[..., k]]
  response = jnp.sum(mixed * maps[..., None], axis=-2)
  white = jnp.asarray(_D65_WHITE_XYZ, response.dtype)
  return response[..., 3:], jnp.max(response[..., :3] / white, axis=-1)


def _exposure(reference: np.ndarray, target: float) -> float:
  """k such that the 99th percentile of `reference` becomes `target`."""
  reference = reference.ravel()
  rank = int(0.99 * (reference.size - 1))
  # numpy's partition is ~100x faster than a sort-based quantile on XLA CPU.
  q = np.partition(reference, rank)[rank]
  return float(target / max(q, 1e-6))


@functools.partial(jax.jit, static_argnames=('pattern', 'black', 'white',
                                             'add_noise', 'shot_range',
                                             'low_pass', 'corrected'))
def _capture(key, response, exposure, wb_gains, cam_to_srgb, *, pattern,
             black, white, add_noise, shot_range, low_pass, falloff=None,
             corrected=False):
  """Camera response -> (mosaic DN, packed, sRGB, vis, shot, read).

  `falloff`: (H/2, W/2, 4) lens shading applied to the clean signal before
  noise (None: none); `corrected` divides it out of the quantised values.
  """
  rgb = response * exposure
  if low_pass:
    # An optical low-pass filter spreads each point over a 2x2 cell: every
    # site of a cell sees the cell's mean, so the packed images of cameras
    # with different CFA phases sample the same scene points.
    h, w = rgb.shape[:2]
    cell = rgb.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    cell = cell[..., (0, 1, 1, 2)]
    if falloff is not None:
      cell = cell * falloff
    clean = cfa.unpack(cell, pattern=pattern)
  else:
    clean = demosaic_lib.mosaic(rgb, pattern=pattern)
    if falloff is not None:
      clean = clean * cfa.unpack(falloff, pattern=pattern)
  if add_noise:
    level_key, noise_key = jax.random.split(key)
    level = noise_lib.random_noise_levels(level_key, shot_range=shot_range)
    shot, read = level.shot, level.read
    noisy = noise_lib.add_noise(noise_key, clean, shot, read)
  else:
    shot = read = jnp.zeros((), rgb.dtype)
    noisy = clean
  dn = jnp.clip(jnp.round(black + noisy * (white - black)), 0, white)
  if corrected:
    # A raw converter's flat-field step: after quantisation, so corners keep
    # their amplified noise and coarser steps.
    gain = cfa.unpack(1.0 / falloff, pattern=pattern)
    dn = jnp.clip(jnp.round(black + (dn - black) * gain), 0, white)
  packed = levels.normalize(cfa.pack(dn, pattern=pattern), black_level=black,
                            white_level=white, clip='both')
  # The reference pipeline's colour stages (as `rawjax.isp.process`), on the
  # clean, saturated camera RGB instead of a demosaicked mosaic.
  gains = wb_gains / jnp.min(wb_gains)
  balanced = jnp.minimum(color.white_balance(jnp.clip(rgb, 0.0, 1.0), gains),
                         1.0)
  linear = jnp.clip(color.apply_ccm(balanced, cam_to_srgb), 0.0, 1.0)
  srgb = color.srgb_encode(linear)
  vis = color.visualize_raw(packed)
  return dn, packed, srgb, vis, shot, read


@functools.partial(jax.jit, static_argnames=('style',))
def _isp_target(response, exposure, wb_gains, cam_to_srgb, *, style):
  """The camera-like ISP's sRGB of the clean, saturated camera RGB."""
  from rawjax.isp import camera_isp  # pylint: disable=g-import-not-at-top
  rgb = jnp.clip(response * exposure, 0.0, 1.0)
  balanced = jnp.minimum(color.white_balance(rgb, wb_gains / jnp.min(
      wb_gains)), 1.0)
  linear = jnp.maximum(color.apply_ccm(balanced, cam_to_srgb), 0.0)
  return camera_isp.render(linear, style=style)


@dataclasses.dataclass(frozen=True, eq=False)
class Capture:
  """One camera's raw capture of a scene.

  Attributes:
    camera: the `CameraProfile`.
    mosaic: (H, W) uint16 sensor values (black level included).
    packed: (H/2, W/2, 4) float32 (R, Gr, Gb, B), black-subtracted and
      normalised to [0, 1] (clipped), as the raw2raw `.mat` files.
    metadata: `RawMetadata` for `rawjax.isp.process` (CFA, levels, as-shot
      white balance, camera -> sRGB matrix, and the shading-correction gain
      map 1 / falloff when the raw is shaded).
    xyz_to_camera: (3, 3) DNG ColorMatrix (D65) fitted from the
      sensitivities.
    illuminant_rgb: (J, 3) normalised camera response to a perfect white
      under each illuminant at unit irradiance, at this capture's exposure.
    srgb: (H, W, 3) float32 sRGB rendering in [0, 1] by the reference
      colour stages.
    vis: (H/2, W/2, 3) uint8 raw2raw visualisation ((0.9 x)^(1/1.6)).
    exposure: the exposure factor k.
    shot_noise, read_noise: the noise variances drawn (0 without noise).
    falloff: (H/2, W/2, 4) float32 lens shading (relative illumination in
      (0, 1], canonical order) the raw was recorded with; None without.
    shading_corrected: the mosaic and packed raw have `falloff` divided out.
  """
  camera: CameraProfile
  mosaic: np.ndarray
  packed: np.ndarray
  metadata: RawMetadata
  xyz_to_camera: np.ndarray
  illuminant_rgb: np.ndarray
  srgb: np.ndarray
  vis: np.ndarray
  exposure: float
  shot_noise: float
  read_noise: float
  falloff: np.ndarray | None = None
  shading_corrected: bool = False

  def gain_maps(self, *, map_points: tuple[int, int] = (17, 17)) -> tuple:
    """The DNG GainMap opcodes correcting the recorded shading (() if none)."""
    if self.falloff is None or self.shading_corrected:
      return ()
    from rawjax.isp import shading  # pylint: disable=g-import-not-at-top
    return shading.gain_maps_from_falloff(
        self.falloff, pattern=self.camera.pattern, map_points=map_points)


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """A simulated scene and its captures by one or more cameras.

  Attributes:
    index, seed: the scene is a pure function of these (and the config).
    content: 'dead_leaves', 'fractal', 'natural: <scikit-image photograph>'
      or 'photo: <catalogue source>'.
    illuminants: names of the J illuminants.
    illuminant_spectra: (J, 31) their spectra (luminance 1) on 400-700 nm.
    illumination_map: (H, W, J) irradiance of each illuminant per pixel
      (mean of the sum over the image is 1); the mixture coefficients of the
      LSMI setting are this divided by its sum over J.
    chart_boxes: (24, 4) int32 (top, left, bottom, right), bottom/right
      exclusive, of the ColorChecker patches in mosaic pixels (even, so
      halve them for packed images), in chart order; None without a chart.
    captures: camera slug -> `Capture`.
  """
  index: int
  seed: int
  content: str
  illuminants: tuple[str, ...]
  illuminant_spectra: np.ndarray
  illumination_map: np.ndarray
  chart_boxes: np.ndarray | None
  captures: dict[str, Capture]

  @property
  def multi_illuminant(self) -> bool:
    return len(self.illuminants) > 1

  def illuminant_image(self, camera: str) -> np.ndarray:
    """(H, W, 3) camera response to a white surface at each pixel.

    Divided by its green channel it is the per-pixel illuminant colour (the
    ground truth of multi-illuminant white balance).
    """
    return self.illumination_map @ self.captures[camera].illuminant_rgb


def generate_scene(seed: int, index: int, *,
                   config: SceneConfig | str = 'raw2raw',
                   cameras: Sequence[CameraProfile | str] | None = None,
                   unlabelled: bool = False) -> Scene:
  """Renders scene `index` of the stream defined by `seed`.

  Args:
    seed: dataset seed.
    index: scene number (>= 0); scenes of one seed are independent.
    config: a `SceneConfig` or a preset name ('raw2raw', 'multi_illum',
      'raw2srgb').
    cameras: the cameras that capture the scene (profiles, names or slugs);
      None: `config.cameras`, else the two colour-science cameras. The scene
      itself does not depend on this choice.
    unlabelled: draw photographs from the unlabelled share of the catalogue
      (`SceneConfig.unlabelled_fraction`; the unpaired scenes of a dataset).

  Returns:
    The `Scene` with one `Capture` per camera.
  """
  config = _config(config)
  cameras = scene_cameras(config, cameras)
  if not cameras:
    raise ValueError('generate_scene: at least one camera is needed.')
  return _generate_scene(seed, index, config, cameras,
                         [c.slug for c in cameras], unlabelled=unlabelled)


def scene_cameras(config: SceneConfig,
                  cameras: Sequence[CameraProfile | str] | None = None
                  ) -> list[CameraProfile]:
  """The profiles of `cameras`, else of `config.cameras`, else the default."""
  if cameras is None:
    cameras = config.cameras or DEFAULT_CAMERAS
  return resolve_cameras(cameras, ssf_dir=config.ssf_dir)


def _generate_scene(seed, index, config, cameras, captured, *,
                    unlabelled=False) -> Scene:
  """`generate_scene` rendering all `cameras`, capturing only `captured`.

  Rendering every camera's response (a few more channels in one gather)
  keeps one compiled renderer for a dataset whose scenes are captured by
  different subsets of its cameras.
  """
  rng = np.random.default_rng([int(seed), int(index)])
  h, w = config.height, config.width
  names, library = _spectra.reflectance_library()
  num_surfaces = len(names) - 1

  multi = rng.random() < config.multi_illuminant_fraction
  count = (3 if rng.random() < config.three_illuminant_fraction else 2
          ) if multi else 1
  illuminant_names, spectra = _sample_illuminants(rng, config, count)
  maps = _light_maps(rng, h, w, count, multi=multi)
  if config.content_sources == 'catalogue':
    content, indices, weights = _catalogue_content(
        rng, h, w, num_surfaces, config, unlabelled=unlabelled)
  elif rng.random() < config.natural_fraction:
    content, indices, weights = _natural_content(rng, h, w)
  else:
    content, indices, weights = _dead_leaves(rng, h, w, num_surfaces)
  boxes = (_place_chart(rng, indices, weights)
           if rng.random() < config.chart_fraction else None)
  target = rng.uniform(*config.exposure)
  # Unused lights have zero irradiance: one compiled renderer serves 1-3.
  padded_maps = np.zeros((h, w, _MAX_LIGHTS), np.float32)
  padded_maps[..., :count] = maps
  padded_spectra = np.zeros((_MAX_LIGHTS, spectra.shape[1]))
  padded_spectra[:count] = spectra

  channels = np.concatenate([_spectra.cmfs()] +
                            [c.sensitivities for c in cameras], axis=1)
  table = np.einsum('kl,jl,lc->kjc', library, padded_spectra, channels)
  response, reference = jax.device_get(_render_radiance(
      indices, weights, padded_maps, table.astype(np.float32)))
  exposure = _exposure(reference, target)

  mean_light = maps.reshape(-1, count).mean(0) @ spectra
  captures = {}
  for i, camera in enumerate(cameras):
    if camera.slug not in captured:
      continue
    white = mean_light @ camera.sensitivities
    wb_gains = white[1] / white
    # Raw threefry key data from the scene's seed sequence: the noise of a
    # capture depends only on (seed, index, camera name).
    cam_key = np.random.SeedSequence(
        [int(seed), int(index), zlib.crc32(camera.name.encode())]
    ).generate_state(2, dtype=np.uint32)
    falloff = (camera.shading.falloff(h // 2, w // 2) if config.shading and
               camera.shading is not None else None)
    camera_response = response[..., 3 * i:3 * i + 3]
    dn, packed, srgb, vis, shot, read = jax.device_get(_capture(
        cam_key, camera_response, np.float32(exposure),
        wb_gains.astype(np.float32),
        camera.cam_to_srgb.astype(np.float32), pattern=camera.pattern,
        black=camera.black_level, white=camera.white_level,
        add_noise=config.noise,
        shot_range=tuple(r * camera.noise_scale for r in config.shot_range),
        low_pass=config.optical_low_pass, falloff=falloff,
        corrected=config.shading_corrected and falloff is not None))
    if config.isp_style is not None:
      srgb = np.asarray(_isp_target(
          camera_response, np.float32(exposure), wb_gains.astype(np.float32),
          camera.cam_to_srgb.astype(np.float32), style=config.isp_style))
    metadata = RawMetadata.create(
        pattern=camera.pattern, black_level=camera.black_level,
        white_level=camera.white_level, wb_gains=wb_gains,
        cam_to_srgb=camera.cam_to_srgb,
        # The correction the DNG's GainMap opcodes carry (exact here; the
        # file's 17 x 17 maps interpolate it).
        gain_map=(1.0 / falloff if falloff is not None and
                  not config.shading_corrected else None))
    captures[camera.slug] = Capture(
        camera=camera, mosaic=dn.astype(np.uint16), packed=packed,
        metadata=metadata, xyz_to_camera=camera.xyz_to_camera,
        illuminant_rgb=exposure * (spectra @ camera.sensitivities),
        srgb=srgb, vis=np.clip(vis * 256, 0, 255).astype(np.uint8),
        exposure=exposure, shot_noise=float(shot), read_noise=float(read),
        falloff=falloff,
        shading_corrected=config.shading_corrected and falloff is not None)
  return Scene(index=int(index), seed=int(seed), content=content,
               illuminants=illuminant_names, illuminant_spectra=spectra,
               illumination_map=maps, chart_boxes=boxes, captures=captures)


def generate_scenes(seed: int, indices: int | Sequence[int], *,
                    config: SceneConfig | str = 'raw2raw',
                    cameras: Sequence[CameraProfile | str] | None = None,
                    unlabelled: bool = False,
                    progress: bool = False) -> Iterator[Scene]:
  """Yields `generate_scene(seed, i)` for i in `indices` (or range(indices))."""
  if isinstance(indices, int):
    indices = range(indices)
  iterator = indices
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(indices, desc='scenes', unit='scene')
  for i in iterator:
    yield generate_scene(seed, i, config=config, cameras=cameras,
                         unlabelled=unlabelled)
