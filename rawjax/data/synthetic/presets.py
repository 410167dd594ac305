"""What a scene may contain (`SceneConfig`) and the named presets."""

from __future__ import annotations

import dataclasses

from rawjax.data import _spectra
from rawjax.data.synthetic.illuminants import _FAMILIES


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """What a scene may contain; the presets fix these per experiment.

  Attributes:
    height, width: mosaic size (even).
    multi_illuminant_fraction: probability of a 2- or 3-illuminant scene.
    three_illuminant_fraction: among those, probability of three lights.
    chart_fraction: probability of a ColorChecker in the scene.
    natural_fraction: probability of a photograph-driven scene (else dead
      leaves).
    illuminant_weights: relative probabilities of the families 'daylight',
      'planckian', 'fluorescent', 'led', or of fixed colour-science
      illuminants by name (e.g. (('D65', 1.0),)).
    daylight_cct, planckian_cct: CCT ranges (K) of those families.
    exposure: range of the 99th percentile of the scene's white-normalised
      XYZ after exposure (so a little of some scenes clips).
    optical_low_pass: every CFA site integrates its whole 2x2 cell (an
      optical low-pass filter), so packed images of cameras with different
      CFA phases are pixel-aligned; False samples the scene at each site,
      which shifts the packed channels of two phases by one pixel.
    noise: whether to add shot + read noise.
    shot_range: range of the shot-noise variance per unit signal (read noise
      follows UPI's log-linear relation, `rawjax.isp.noise`); each camera
      multiplies it by its `CameraProfile.noise_scale`.
    cameras: the cameras that capture the scenes (names, slugs or CSV paths,
      `cameras.camera_profile`), used when `generate_scene` / `write_dataset`
      get none; None: the two colour-science cameras.
    ssf_dir: folder of sensitivity CSVs for `cameras` (None: $RAWJAX_SSF_DIR
      or ../shared/data/ssf beside the repository).
    shading: apply each camera's lens and colour shading to its raw before
      noise (as the sensor records it); the DNG carries the correcting
      GainMap opcodes.
    shading_corrected: write shading-corrected raw instead (the gain applied
      after noise and quantisation, as a raw converter would; no GainMap).
    content_sources: 'legacy' (five scikit-image photographs) or 'catalogue'
      (every photograph of `rawjax.data.sources.builtin_sources()`).
    photo_dir: with 'catalogue', a folder of more photographs
      (`rawjax.data.sources.folder_sources`) added to the built-in ones.
    unlabelled_fraction: with 'catalogue', the share of the photographs kept
      for unlabelled (unpaired) scenes; labelled scenes never see them
      (`rawjax.data.sources.content_split`). 0: one pool for all.
    procedural_fraction: among non-photograph scenes, the share of fractal
      texture scenes (the rest are dead leaves).
    isp_style: None: the sRGB target is the reference colour stages (as
      `rawjax.isp.process`); a `rawjax.isp.camera_isp.STYLES` name ('phone',
      'expert', ...): the content-dependent camera-like ISP
      (`camera_isp.render`) of the clean, unshaded camera RGB.
  """
  height: int = 256
  width: int = 256
  multi_illuminant_fraction: float = 0.3
  three_illuminant_fraction: float = 0.4
  chart_fraction: float = 0.5
  natural_fraction: float = 0.35
  illuminant_weights: tuple[tuple[str, float], ...] = (
      ('daylight', 0.4), ('planckian', 0.2), ('fluorescent', 0.2),
      ('led', 0.2))
  daylight_cct: tuple[float, float] = (4000.0, 12000.0)
  planckian_cct: tuple[float, float] = (2300.0, 3500.0)
  exposure: tuple[float, float] = (0.45, 0.9)
  optical_low_pass: bool = True
  noise: bool = True
  shot_range: tuple[float, float] = (2e-5, 5e-4)
  cameras: tuple[str, ...] | None = None
  ssf_dir: str | None = None
  shading: bool = False
  shading_corrected: bool = False
  content_sources: str = 'legacy'
  photo_dir: str | None = None
  unlabelled_fraction: float = 0.0
  procedural_fraction: float = 0.0
  isp_style: str | None = None

  def __post_init__(self):
    if self.height % 2 or self.width % 2 or min(self.height, self.width) < 16:
      raise ValueError(f'SceneConfig: height and width must be even and >= '
                       f'16, got {self.height}x{self.width}.')
    for name in ('multi_illuminant_fraction', 'three_illuminant_fraction',
                 'chart_fraction', 'natural_fraction', 'unlabelled_fraction',
                 'procedural_fraction'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'SceneConfig: {name} must be in [0, 1].')
    if not self.illuminant_weights or any(
        w < 0 for _, w in self.illuminant_weights) or sum(
            w for _, w in self.illuminant_weights) <= 0:
      raise ValueError('SceneConfig: illuminant_weights needs non-negative '
                       'weights with a positive sum.')
    for family, _ in self.illuminant_weights:
      if family not in _FAMILIES:
        _spectra.named_illuminants((family,))  # raises for unknown names

    if self.content_sources not in ('legacy', 'catalogue'):
      raise ValueError("SceneConfig: content_sources must be 'legacy' or "
                       f"'catalogue', got {self.content_sources!r}.")
    if self.unlabelled_fraction and self.content_sources != 'catalogue':
      raise ValueError("SceneConfig: unlabelled_fraction needs "
                       "content_sources='catalogue'.")
    if self.shading_corrected and not self.shading:
      raise ValueError('SceneConfig: shading_corrected needs shading=True.')
    if self.isp_style is not None:
      from rawjax.isp import camera_isp  # pylint: disable=g-import-not-at-top
      if self.isp_style not in camera_isp.STYLES:
        raise ValueError(f'SceneConfig: isp_style must be None or one of '
                         f'{sorted(camera_isp.STYLES)}, got '
                         f'{self.isp_style!r}.')
    if self.cameras is not None:
      if isinstance(self.cameras, str) or not self.cameras:
        raise ValueError('SceneConfig: cameras must be a non-empty tuple of '
                         f'camera names, got {self.cameras!r}.')
      object.__setattr__(self, 'cameras', tuple(self.cameras))

  def replace(self, **changes) -> 'SceneConfig':
    return dataclasses.replace(self, **changes)


# A phone (10-bit, strong colour shading, 4x the noise) and a full-frame DSLR.
_V2_CAMERAS = ('nokia-n900', 'canon-5dmarkii')

PRESETS = {
    # Afifi's raw2raw setting: mostly one light, low noise, charts in half.
    'raw2raw': SceneConfig(),
    # LSMI-like: every scene has two or three lights, most have a chart.
    'multi_illum': SceneConfig(multi_illuminant_fraction=1.0,
                               chart_fraction=0.7),
    # RAW-to-sRGB: one light, the full UPI noise range, few charts.
    'raw2srgb': SceneConfig(multi_illuminant_fraction=0.0, chart_fraction=0.2,
                            shot_range=(1e-4, 0.012)),
    # Second generation (issue 15): a phone and a DSLR of the measured
    # registry, lens shading, the photograph catalogue and procedural scenes.
    'raw2raw_v2': SceneConfig(cameras=_V2_CAMERAS, shading=True,
                              content_sources='catalogue',
                              natural_fraction=0.5, procedural_fraction=0.3),
    'multi_illum_v2': SceneConfig(cameras=_V2_CAMERAS, shading=True,
                                  multi_illuminant_fraction=1.0,
                                  chart_fraction=0.7,
                                  content_sources='catalogue',
                                  natural_fraction=0.5,
                                  procedural_fraction=0.3),
    # Camera-like ISP targets; unpaired scenes (the unlabelled sRGB set)
    # come from other photographs than the labelled pairs.
    'raw2srgb_v2': SceneConfig(cameras=_V2_CAMERAS, shading=True,
                               multi_illuminant_fraction=0.0,
                               chart_fraction=0.2, shot_range=(1e-4, 0.012),
                               content_sources='catalogue',
                               unlabelled_fraction=0.5, natural_fraction=0.7,
                               procedural_fraction=0.3, isp_style='phone'),
}


def _config(config: SceneConfig | str) -> SceneConfig:
  if isinstance(config, SceneConfig):
    return config
  if config not in PRESETS:
    raise ValueError(f'Unknown preset {config!r}; choose one of '
                     f'{", ".join(PRESETS)}.')
  return PRESETS[config]
