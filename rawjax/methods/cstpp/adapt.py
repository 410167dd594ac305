"""Cross-camera ISP with a trained CSTPP (the paper's section 4.3, small).

A raw-to-sRGB ISP trained on camera X is deployed on camera Y. The trained
CSTPP generators help in two ways (the paper's Fig. 1 b, c):

  * adaptation (test time): the ISP trained on X -> X sRGB is fed
    G_{Y->X}(raw_Y);
  * augmentation (train time): the ISP is trained on G_{X->Y}(raw_X) with
    X's sRGB, then fed raw_Y directly.

Beside them: 'no mapping' (the ISP trained on X fed raw_Y as is) and the
'same camera' upper bound (fed raw_X of the test scene). The test target is
always camera X's sRGB rendering of the test scene, as the paper's B -> A
evaluation; both role assignments (X = A, Y = B and the reverse) are run.
Metrics: PSNR, SSIM and the histogram KL of eq. 14 on sRGB (the paper's
FID is not computed: it needs Inception weights, and on a few dozen small
images it would not be meaningful).

The training method 'cstpp_adapt' (configs/cstpp_adapt.py) runs this
through the one loop: its state holds four ISPs, {'a', 'b'} (the camera X
it is trained for) x {'plain', 'augmented'} (trained on raw_X or on
G_{X->Y}(raw_X)), all from the same initial draw, trained together by one
step (each ISP's gradient is that of its own L1 loss, and Adam is
elementwise, so this equals four separate runs). The data is the CSTPP
config's dataset (`config.data`, the simulated one by default): camera X's
unpaired packed raws with the 8-bit sRGB rendering stored in their metadata
(`meta/<file>.npz` 'srgb'); random `adapt.patch_size` patches, the same for
the plain and augmented ISP of a camera (one seeded stream per camera). The
generators are the newest checkpoint of `adapt.cstpp_workdir`, run in eval
mode at `config.model.downsample`. The ISP (`adapt.isp_model`, options
`adapt.isp_options` as JSON) maps (B, h, w, 4) packed raw to (B, h, w, 3)
(sRGB at packed resolution, the rendering 2 x 2-averaged) or
(B, 2h, 2w, 3) (full resolution).
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import models
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval import images as eval_images
from rawjax.eval import results as eval_results
from rawjax.eval import scoring
from rawjax.eval.raw2raw import camera_names, require_train_split
from rawjax.isp import color
from rawjax.methods.cstpp import config as config_lib
from rawjax.methods.cstpp.data import process_share
from rawjax.methods.cstpp.inference import direction_variables, translate
from rawjax.methods.cstpp.state import restore_state
from rawjax.train import state as state_lib
from rawjax.train import steps as steps_lib

__all__ = [
    'CAMERAS', 'SETTINGS', 'AdaptData', 'evaluate', 'init', 'isp_model',
    'make_data', 'make_steps', 'markdown',
]

# The ISP's camera X, and its direction to / from the other camera Y.
CAMERAS = (('a', 0, 'a_to_b', 'b_to_a'), ('b', 1, 'b_to_a', 'a_to_b'))
TRAININGS = ('plain', 'augmented')
SETTINGS = ('same camera (upper bound)', 'no mapping',
            'adaptation (test time)', 'augmentation (train time)')
SCORES = ('psnr', 'ssim', 'kl')


def _check_config(config) -> None:
  config_lib.check_config(config)
  if 'adapt' not in config:
    raise ValueError("config has no 'adapt' section; start from "
                     'configs/cstpp_adapt.py.')
  if not config.adapt.cstpp_workdir:
    raise ValueError('config.adapt.cstpp_workdir must name the workdir of a '
                     'CSTPP training run (python -m launch.train '
                     '--config=configs/raw2raw_cstpp.py ...).')
  if config.model.in_channels != 4:
    raise ValueError('the cross-camera ISP experiment needs the packed-raw '
                     '(4-channel) CSTPP generators.')


def isp_model(config):
  """The ISP: `rawjax.models.get_model(adapt.isp_model, **isp_options)`."""
  return models.get_model(config.adapt.isp_model,
                          **json.loads(config.adapt.isp_options))


def _scale(config) -> int:
  """The ISP's output / input size ratio (1 or 2), checked."""
  p = config.adapt.patch_size
  probe = jnp.zeros((1, p, p, 4), jnp.float32)
  shape = jax.eval_shape(isp_model(config).init_with_output,
                         jax.random.PRNGKey(0), probe)[0].shape
  scale = shape[1] // p
  if shape[-1] != 3 or scale not in (1, 2):
    raise ValueError(f'the ISP model maps {probe.shape} to {shape}; it '
                     'must output (B, h, w, 3) or (B, 2h, 2w, 3) sRGB.')
  return scale


def _srgb(path: pathlib.Path, scale: int) -> np.ndarray:
  """The stored 8-bit sRGB rendering in [0, 1], 2x2-averaged for scale 1."""
  with np.load(path) as f:
    if 'srgb' not in f:
      raise ValueError(f'{path} has no sRGB rendering (key "srgb"); the '
                       "experiment needs the simulated dataset's metadata.")
    image = f['srgb'].astype(np.float32) / 255.0
  if scale == 2:
    return image
  h, w, c = image.shape
  return image.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))


def _generators(config):
  """((direction, x) -> G(x), checkpoint step): adapt.cstpp_workdir's CSTPP."""
  cstpp_state = restore_state(config, config.adapt.cstpp_workdir)
  model = config_lib.generator_model(config)
  variables = {tag: direction_variables(cstpp_state, tag)
               for tag in ('a_to_b', 'b_to_a')}
  return (lambda tag, x: translate(model, *variables[tag], x),
          int(np.asarray(cstpp_state['step'])))


def _dataset(config) -> tuple[pathlib.Path, tuple[str, str]]:
  root = dataset_root(config.data)
  return root, camera_names(config.data.cameras, root)


# --- data ---------------------------------------------------------------------


class AdaptData:
  """Patches of each camera's raws, their CSTPP translations and sRGB.

  Batch of a step (this process's share N = adapt.batch_size / processes):
  for X in ('a', 'b'): 'X_raw' (N, p, p, 4) packed raw patches of camera X,
  'X_mapped' the same patches of G_{X->Y}(raw_X) (translated whole, then
  cropped), 'X_srgb' (N, s p, s p, 3) X's sRGB rendering there (s the ISP's
  scale). Deterministic (numpy's default_rng(config.seed) per camera), so
  the loop resumes by replaying it.
  """

  def __init__(self, config, *, split: str = 'train', process_index: int = 0,
               process_count: int = 1):
    require_train_split(split, method='cstpp_adapt')
    _check_config(config)
    a = config.adapt
    self.share = process_share(a.batch_size, 'adapt.batch_size',
                               process_index=process_index,
                               process_count=process_count)
    self.batch_size, self.patch, self.seed = (a.batch_size, a.patch_size,
                                              config.seed)
    self.scale = _scale(config)
    root, cameras = _dataset(config)
    generate, _ = _generators(config)
    self.cameras = {}
    for x, index, x_to_y, _ in CAMERAS:
      dataset = raw2raw_data.Raw2RawUnpaired(root, camera=cameras[index])
      raws = [dataset.load(k)['raw'] for k in dataset.keys]
      self.cameras[x] = {
          'raw': raws,
          'mapped': [generate(x_to_y, r) for r in raws],
          'srgb': [_srgb(root / 'unpaired' / cameras[index] / 'meta' /
                         f'{k}.npz', self.scale) for k in dataset.keys]}

  def _draws(self, rng: np.random.Generator, images: Sequence[np.ndarray]
             ) -> list[tuple[int, int, int]]:
    draws = []
    for i in rng.integers(0, len(images), self.batch_size):
      h, w = images[i].shape[:2]
      top = rng.integers(0, h - self.patch + 1)
      left = rng.integers(0, w - self.patch + 1)
      draws.append((i, top, left))
    return draws

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    rngs = {x: np.random.default_rng(self.seed) for x, *_ in CAMERAS}
    p, s = self.patch, self.scale
    while True:
      batch = {}
      for x, data in self.cameras.items():
        draws = self._draws(rngs[x], data['raw'])[self.share]
        for field in ('raw', 'mapped'):
          batch[f'{x}_{field}'] = np.stack(
              [data[field][i][t:t + p, l:l + p] for i, t, l in draws])
        batch[f'{x}_srgb'] = np.stack(
            [data['srgb'][i][t * s:(t + p) * s, l * s:(l + p) * s]
             for i, t, l in draws])
      yield batch


# The Method interface's make_data: the stream itself.
make_data = AdaptData


# --- state and step -----------------------------------------------------------


def _optimizer(config) -> optax.GradientTransformation:
  return optax.adam(config.adapt.learning_rate)


def init(config, rng: jax.Array) -> dict[str, Any]:
  """Four ISPs from one draw, their Adam state, their last training L1.

  Returns:
    {'step', 'rng', 'params': {X: {'plain', 'augmented'}: ISP variables},
    'opt_state', 'train_l1': {'X_plain', 'X_augmented'}}.
  """
  _check_config(config)
  model = isp_model(config)
  p = config.adapt.patch_size
  probe = jnp.zeros((1, p, p, 4), jnp.float32)
  # Every ISP starts from the draw of the config's seed, so the settings
  # differ only in what they are trained on.
  variables = jax.jit(model.init)(jax.random.PRNGKey(config.seed), probe)
  params = {x: {t: variables for t in TRAININGS} for x, *_ in CAMERAS}
  opt_state = jax.jit(_optimizer(config).init)(params)
  train_l1 = {f'{x}_{t}': jnp.zeros((), jnp.float32)
              for x, *_ in CAMERAS for t in TRAININGS}
  return state_lib.create(params=params, rng=steps_lib.raw_key(rng),
                          opt_state=opt_state, train_l1=train_l1)


def make_steps(config) -> list:
  """[train_step]: one Adam step of the four ISPs (L1 to the sRGB).

  Metrics: 'loss' (the sum of the four L1 losses), 'l1_<X>_<training>',
  gradient / parameter / update norms.
  """
  _check_config(config)
  model = isp_model(config)
  tx = _optimizer(config)

  def loss_fn(params, batch):
    l1 = {}
    for x, *_ in CAMERAS:
      for t, inputs in (('plain', batch[f'{x}_raw']),
                        ('augmented', batch[f'{x}_mapped'])):
        l1[f'{x}_{t}'] = jnp.mean(jnp.abs(
            model.apply(params[x][t], inputs) - batch[f'{x}_srgb']))
    return sum(l1.values()), l1

  def train_step(state, batch, rng):
    del rng
    loss, l1, update = steps_lib.gradient_update(
        tx, functools.partial(loss_fn, batch=batch), params=state['params'],
        opt_state=state['opt_state'])
    out = steps_lib.pmean({'loss': loss,
                           **{f'l1_{k}': v for k, v in l1.items()}})
    train_l1 = {k: out[f'l1_{k}'] for k in l1}
    out.update(update.diagnostics)
    return dict(state, params=update.params, opt_state=update.opt_state,
                train_l1=train_l1), out

  return [train_step]


# --- evaluation ---------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('model',))
def _render(model, params, raw):
  return jnp.clip(model.apply(params, raw[None])[0], 0.0, 1.0)


def _scores(model, params, inputs, targets) -> dict[str, float]:
  outputs = [_render(model, params, jnp.asarray(x)) for x in inputs]
  values = scoring.score_images(outputs, targets, names=SCORES)
  return {k: float(np.mean(v)) for k, v in values.items()}


def markdown(results: dict[str, Any]) -> str:
  """results.md: a table per role assignment (PSNR, SSIM, KL)."""
  lines = [f'# Cross-camera ISP with CSTPP ({results["isp_model"]}, '
           f'{results["steps"]} steps)', '']
  for title, rows in results['settings'].items():
    lines += [f'## {title}', '']
    lines += eval_results.markdown_table(
        ('setting', 'PSNR', 'SSIM', 'KL'),
        [(name, f'{row["psnr"]:.2f}', f'{row["ssim"]:.4f}',
          f'{row["kl"]:.4f}') for name, row in rows.items() if 'psnr' in row])
    lines.append('')
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """The four settings for both role assignments on the paired test split.

  Writes results.json ({'steps': ISP steps, 'cstpp_step', 'settings':
  {'ISP of X, deployed on Y': {setting: {psnr, ssim, kl}, 'final train L1':
  {'plain', 'augmented'}}}, ...}), results.md and
  grid_isp_<x>.png (a row per test image: the raw of Y, the ISP's output
  in each setting, X's sRGB target).

  Returns:
    Flat scalars '<x>/<setting>/<metric>'.
  """
  _check_config(config)
  workdir = pathlib.Path(workdir)
  model = isp_model(config)
  scale = _scale(config)
  root, cameras = _dataset(config)
  generate, cstpp_step = _generators(config)
  dataset = raw2raw_data.Raw2RawPaired(root, split=config.eval.split,
                                       cameras=cameras)
  keys = dataset.keys[:config.eval.max_test_images or None]
  tests = [dataset.load(k) for k in keys]
  params = jax.tree.map(jnp.asarray, state['params'])
  train_l1 = {k: float(np.asarray(v)) for k, v in state['train_l1'].items()}
  results = {'cstpp_workdir': config.adapt.cstpp_workdir,
             'cstpp_step': cstpp_step, 'isp_model': config.adapt.isp_model,
             'isp_options': json.loads(config.adapt.isp_options),
             'steps': int(np.asarray(state['step'])),
             'num_test_pairs': len(tests), 'settings': {}}
  flat = {}
  for x, index, _, y_to_x in CAMERAS:
    other = 1 - index
    targets = [_srgb(root / 'paired' / cameras[index] / 'meta' / f'{k}.npz',
                     scale) for k in keys]
    own = [t[('raw_a', 'raw_b')[index]] for t in tests]
    foreign = [t[('raw_a', 'raw_b')[other]] for t in tests]
    adapted = [generate(y_to_x, r) for r in foreign]
    runs = {SETTINGS[0]: (params[x]['plain'], own),
            SETTINGS[1]: (params[x]['plain'], foreign),
            SETTINGS[2]: (params[x]['plain'], adapted),
            SETTINGS[3]: (params[x]['augmented'], foreign)}
    rows = {name: _scores(model, p, inputs, targets)
            for name, (p, inputs) in runs.items()}
    for name, row in rows.items():
      flat.update({f'{x}/{name}/{k}': v for k, v in row.items()})
    rows['final train L1'] = {t: train_l1[f'{x}_{t}'] for t in TRAININGS}
    title = f'ISP of {cameras[index]}, deployed on {cameras[other]}'
    results['settings'][title] = rows
    count = min(config.eval.num_grid_images, len(tests))
    if count and jax.process_index() == 0:
      grid = [[np.asarray(color.visualize_raw(jnp.asarray(foreign[i])))] +
              [np.asarray(_render(model, p, jnp.asarray(inputs[i])))
               for p, inputs in runs.values()] + [targets[i]]
              for i in range(count)]
      workdir.mkdir(parents=True, exist_ok=True)
      eval_images.write_image_rows(
          workdir / f'grid_isp_{x}.png', grid,
          column_titles=['raw of Y', 'same camera', 'no mapping',
                         'adaptation', 'augmentation', 'target sRGB (X)'],
          row_labels=list(keys[:count]))
  eval_results.write_results(workdir, results, markdown(results))
  return flat
