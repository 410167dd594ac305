"""Illuminant families and the spatial light maps of mixed-light scenes."""

from __future__ import annotations

import numpy as np

from rawjax.data import _spectra


def _daylight(rng, config):
  cct = 1e6 / rng.uniform(1e6 / config.daylight_cct[1],
                          1e6 / config.daylight_cct[0])
  return f'D-series {cct:.0f} K', _spectra.daylight(cct)


def _planckian(rng, config):
  cct = rng.uniform(*config.planckian_cct)
  return f'Planckian {cct:.0f} K', _spectra.planckian(cct)


def _named(names):
  def sample(rng, config):
    del config
    i = int(rng.integers(len(names)))
    return names[i], _spectra.named_illuminants(names)[i]
  return sample


_FAMILIES = {'daylight': _daylight, 'planckian': _planckian,
             'fluorescent': _named(_spectra.FLUORESCENT),
             'led': _named(_spectra.LED)}


def _sample_illuminants(rng, config, count):
  families = [f for f, _ in config.illuminant_weights]
  p = np.array([w for _, w in config.illuminant_weights], np.float64)
  # Distinct families first (an LSMI scene mixes e.g. daylight and an LED),
  # repeating only when there are more lights than families.
  chosen = list(rng.choice(len(families), size=min(count, len(families)),
                           replace=False, p=p / p.sum()))
  while len(chosen) < count:
    chosen.append(rng.choice(len(families), p=p / p.sum()))
  names, spectra = zip(*[_family(families[i])(rng, config) for i in chosen])
  return tuple(names), np.stack(spectra)


def _family(name: str):
  """A family sampler, or a fixed colour-science illuminant by its name."""
  return _FAMILIES.get(name) or _named((name,))


def _light_maps(rng, h, w, count, *, multi):
  """(h, w, count) irradiance of point lights over a Lambertian floor."""
  size = max(h, w)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
  maps = []
  for _ in range(count):
    angle = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.2, 1.2) * size
    px = w / 2 + distance * np.cos(angle)
    py = h / 2 + distance * np.sin(angle)
    height = rng.uniform(0.3, 1.2) * size
    irradiance = height / ((xx - px)**2 + (yy - py)**2 + height**2)**1.5
    irradiance /= irradiance.mean()
    ambient = rng.uniform(0.0, 0.3) if multi else rng.uniform(0.3, 0.8)
    strength = rng.uniform(0.3, 1.0) if multi else 1.0
    maps.append(strength * (ambient + (1 - ambient) * irradiance))
  maps = np.stack(maps, axis=-1)
  return (maps / maps.sum(-1).mean()).astype(np.float32)
