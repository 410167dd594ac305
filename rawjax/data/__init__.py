"""Data: the simulated two-camera raw dataset and loaders of real datasets.

The simulator (`rawjax.data.synthetic`) is exported lazily, so that
`python -m rawjax.data.synthetic` does not import its module twice.
"""

_SYNTHETIC = (
    'CameraProfile', 'Capture', 'DEFAULT_CAMERAS', 'LensShading', 'PRESETS',
    'Scene', 'SceneConfig', 'camera_profile', 'fit_xyz_to_camera',
    'generate_scene', 'generate_scenes', 'load_cameras', 'write_dataset')


def __getattr__(name):
  if name in _SYNTHETIC:
    from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
    return getattr(synthetic, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(list(globals()) + list(_SYNTHETIC))
