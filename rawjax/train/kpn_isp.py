"""Kernel-prediction ISP training: packed raw -> sRGB, supervised.

Xing, Li, Zhang, Chen (SIGGRAPH 2022 poster) train a kernel-prediction
network (`rawjax.models.KPN`, eq. 1-2) on raw patches of a phone paired with
aligned sRGB patches of a high-end camera. The poster gives no loss,
optimiser or schedule; our choices (docs/kpn.md):

  * loss: L1 between the network's sRGB and the target (Bako et al. 2017,
    the KPCN template the poster builds on, compared L1, L2, relative L2 and
    SSIM and chose L1), plus an optional `config.loss.ssim` weight times
    (1 - SSIM) (Gaussian 11 x 11 window, `rawjax.metrics.ssim`; 0 = off);
  * Adam (betas 0.9 / 0.999), learning rate `config.optim` with an optional
    warm-up + cosine decay (`raw2raw_semi.learning_rate_schedule`).

Data (`PairFolder`): a folder with `train/` and `test/` sub-folders of
`.npz` files, one pair each, as the alignment pipeline writes them:

    raw   (h, w, 4) float32 packed (R, Gr, Gb, B), black-subtracted, [0, 1]
    srgb  (2h, 2w, 3) float32 aligned target sRGB in [0, 1]
    optional, for the classic-pipeline baseline of the evaluation:
    pattern (str, the CFA of the raw, e.g. 'RGGB'), wb_gains (3,),
    cam_to_srgb (3, 3)

With `config.data.root` empty, the embedded simulator's 'raw2srgb' preset
(`rawjax.data.synthetic`) is written once into the cache folder
(`raw2raw_semi.ensure_synthetic`) and exported into that layout for one
camera (`export_synthetic`): training pairs from its unpaired and anchor
captures, test pairs (with metadata) from its paired test captures. The
simulator's targets are the reference colour stages on the clean,
full-resolution scene (no noise, no optical low-pass), 8-bit quantised.

Evaluation (`evaluate`): PSNR, SSIM and mean CIEDE2000 on the test split
for the KPN (output clipped to [0, 1]) and, beside it, the classic pipeline
`rawjax.isp.process` given each image's metadata (bilinear demosaic,
as-shot white balance, camera matrix, sRGB OETF); results.json,
results.md and grid.png.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import metrics, models
from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import _layout
from rawjax.isp import cfa, color
from rawjax.isp import pipeline as isp_pipeline
from rawjax.isp.metadata import RawMetadata
from rawjax.io.staging import datasets_cache, staged_directory
from rawjax.train import method as method_lib
from rawjax.train import raw2raw_semi
from rawjax.train import state as state_lib

__all__ = [
    'AXIS_NAME', 'PairFolder', 'classic_render', 'dataset_root', 'evaluate',
    'export_synthetic', 'init', 'make_data', 'make_steps', 'render',
    'sample_images',
]

AXIS_NAME = 'batch'
_METRICS = ('psnr', 'ssim', 'delta_e2000')
_META_KEYS = ('pattern', 'wb_gains', 'cam_to_srgb')


# --- configuration ---------------------------------------------------------------


def _check_config(config) -> None:
  for section in ('model', 'data', 'optim', 'loss', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/kpn_isp.py.')
  data = config.data
  multiple = 2**int(config.model.get('levels', 3))
  if data.patch_size % multiple or data.patch_size <= 0:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'positive multiple of 2**config.model.levels = '
                     f'{multiple} (packed pixels).')
  if (isinstance(data.batch_size, bool) or not isinstance(data.batch_size, int)
      or data.batch_size < 1):
    raise ValueError(f'config.data.batch_size must be an int >= 1, got '
                     f'{data.batch_size!r}.')
  for key in ('l1', 'ssim'):
    if config.loss[key] < 0:
      raise ValueError(f'config.loss.{key} must be >= 0, got '
                       f'{config.loss[key]!r}.')
  if not (config.loss.l1 or config.loss.ssim):
    raise ValueError('config.loss.l1 and config.loss.ssim are both 0: '
                     'nothing to train.')
  if config.loss.ssim and 2 * data.patch_size < 11:
    raise ValueError(f'config.loss.ssim needs sRGB patches of at least 11 '
                     f'pixels (the SSIM window); config.data.patch_size='
                     f'{data.patch_size} gives {2 * data.patch_size}.')


def _model(config) -> models.KPN:
  model = models.model_from_config(config.model)
  if not isinstance(model, models.KPN):
    raise ValueError(f'config.model.name={config.model.name!r}: kpn_isp '
                     "trains the kernel-prediction ISP ('kpn').")
  return model


def _optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(learning_rate=raw2raw_semi.learning_rate_schedule(config),
                    b1=o.b1, b2=o.b2, eps=o.eps)


# --- data ------------------------------------------------------------------------


class PairFolder(_layout.FileDataset):
  """Aligned raw/sRGB pairs: `<root>/<split>/<name>.npz` (module docstring).

  Each sample: 'raw' (h, w, 4) float32 packed raw in [0, 1] (reference grid,
  scale 1) and 'srgb' (2h, 2w, 3) float32 target in [0, 1] (scale 2), so the
  batching pipeline crops and augments both alike. `metadata(key)` returns
  the optional classic-pipeline metadata. With `white_balance`, 'raw' is
  multiplied by the file's as-shot 'wb_gains' (normalised to a minimum of 1,
  clipped at 1, as `process` does) before the network sees it.

  Raises:
    DatasetLayoutError: the split folder is missing or has no .npz file, or
      a file lacks 'raw' / 'srgb' or has mismatched shapes (named on read).
  """

  name = 'KPN pairs'

  def __init__(self, root: str | os.PathLike[str], *, split: str = 'train',
               white_balance: bool = False):
    check = _layout.LayoutCheck(self.name, root)
    self.root = check.root
    self.split = split
    self.white_balance = bool(white_balance)
    folder = check.require_dir(split, f'{split} pairs (.npz with raw, srgb)')
    self._files = check.files(folder, ('.npz',), f'{split} pairs')
    check.raise_if_any()
    self.keys = sorted(self._files, key=_layout.natural_key)
    self.fields = {'raw': pipeline_lib.Field('packed', 1),
                   'srgb': pipeline_lib.Field('image', 2)}

  def _arrays(self, key: str) -> dict[str, np.ndarray]:
    path = self._files[key]

    def read(p):
      with np.load(p, allow_pickle=False) as f:
        absent = [k for k in ('raw', 'srgb') if k not in f.files]
        if absent:
          raise KeyError(f'array(s) {absent} not in the file (it has '
                         f'{f.files})')
        return {k: np.asarray(f[k]) for k in f.files}

    return self._read(path, f'{self.split} pair {key!r}', read)

  def load(self, key: str) -> dict[str, np.ndarray]:
    arrays = self._arrays(key)
    raw = arrays['raw'].astype(np.float32)
    srgb = arrays['srgb']
    srgb = (srgb.astype(np.float32) / 255.0 if srgb.dtype == np.uint8 else
            srgb.astype(np.float32))
    if raw.ndim != 3 or raw.shape[-1] != 4:
      raise self._layout_error(f'{self.split} pair {key!r}', self._files[key],
                               f"'raw' must be (h, w, 4) packed, got "
                               f'{raw.shape}')
    h, w = raw.shape[:2]
    if srgb.shape != (2 * h, 2 * w, 3):
      raise self._layout_error(f'{self.split} pair {key!r}', self._files[key],
                               f"'srgb' must be (2h, 2w, 3) = "
                               f'{(2 * h, 2 * w, 3)} for raw {raw.shape}, got '
                               f'{srgb.shape}')
    if self.white_balance:
      if 'wb_gains' not in arrays:
        raise self._layout_error(
            f'{self.split} pair {key!r}', self._files[key],
            "no 'wb_gains' array, needed by config.data.white_balance=True")
      gains = arrays['wb_gains'].astype(np.float32)
      gains = gains / gains.min()
      # As `rawjax.isp.process`: gains normalised to a minimum of 1, then
      # clipped at white.
      raw = np.minimum(raw * gains[[0, 1, 1, 2]], 1.0)
    return {'raw': raw, 'srgb': srgb}

  def metadata(self, key: str) -> RawMetadata | None:
    """RawMetadata for `process` on the normalised mosaic, or None."""
    arrays = self._arrays(key)
    if not all(k in arrays for k in _META_KEYS):
      return None
    return RawMetadata.create(
        pattern=str(arrays['pattern']), black_level=0.0, white_level=1.0,
        wb_gains=arrays['wb_gains'], cam_to_srgb=arrays['cam_to_srgb'])


def _save_pair(path: pathlib.Path, raw_path: pathlib.Path,
               meta_path: pathlib.Path, *, with_metadata: bool) -> None:
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  raw = scipy_io.loadmat(raw_path)['raw_rggb'].astype(np.float32)
  with np.load(meta_path) as meta:
    arrays = {'raw': raw, 'srgb': meta['srgb'].astype(np.float32) / 255.0}
    if with_metadata:
      arrays.update(pattern=str(meta['pattern']),
                    wb_gains=meta['wb_gains'].astype(np.float32),
                    cam_to_srgb=meta['cam_to_srgb'].astype(np.float32))
  np.savez(path, **arrays)


def export_synthetic(source: str | os.PathLike[str],
                     out: str | os.PathLike[str], *, camera: str = ''
                     ) -> pathlib.Path:
  """A simulated raw2raw-layout dataset as `PairFolder` pairs of one camera.

  train/: the camera's unpaired and anchor captures; test/: its paired test
  captures; every file has pattern, wb_gains and cam_to_srgb (the classic
  pipeline's metadata; the as-shot gains for `data.white_balance`).
  Written into a temporary sibling and renamed, so an interrupted export
  leaves nothing half-written.

  Args:
    source: folder written by `rawjax.data.synthetic.write_dataset` (with
      sRGB, i.e. the 'raw2srgb' preset).
    out: the `PairFolder` root to create (returned at once if it exists).
    camera: camera slug ('' = the first camera of dataset.json).
  """
  source, out = pathlib.Path(source), pathlib.Path(out)
  if (out / 'test').is_dir():
    return out
  info = json.loads((source / 'dataset.json').read_text())
  camera = camera or info['cameras'][0]['slug']
  slugs = [c['slug'] for c in info['cameras']]
  if camera not in slugs:
    raise ValueError(f'export_synthetic: camera {camera!r} is not in '
                     f'{source} (cameras: {slugs}).')
  splits = info['splits']
  jobs = [('train', source / 'unpaired' / camera, 'raw-rggb', f)
          for f in splits['unpaired'][camera]]
  jobs += [('train', source / 'paired' / camera, 'anchor-raw-rggb', a['file'])
           for a in splits['anchor']]
  jobs += [('test', source / 'paired' / camera, 'raw-rggb', t['file'])
           for t in splits['test']]
  with staged_directory(out, marker='test') as staging:
    for split in ('train', 'test'):
      (staging / split).mkdir(parents=True)
    for split, folder, raw_dir, name in jobs:
      _save_pair(staging / split / f'{name}.npz',
                 folder / raw_dir / f'{name}.mat',
                 folder / 'meta' / f'{name}.npz', with_metadata=True)
  return out


def dataset_root(config) -> pathlib.Path:
  """`config.data.root`, or the exported simulation (made on first use)."""
  data = config.data
  if data.root:
    return pathlib.Path(data.root).expanduser()
  cache = datasets_cache(data.cache_dir)
  s = data.synthetic
  source = raw2raw_semi.ensure_synthetic(
      cache, num_scenes=s.num_scenes, seed=s.seed, height=s.height,
      width=s.width, preset=s.preset, progress=jax.process_index() == 0)
  return export_synthetic(
      source, cache / f'kpn-{source.name}-{data.camera or "first"}',
      camera=data.camera)


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> pipeline_lib.Pipeline:
  """Seeded, resumable batches {'raw': (b, p, p, 4), 'srgb': (b, 2p, 2p, 3)}.

  b = config.data.batch_size / process_count (this process's share), p =
  config.data.patch_size (packed pixels), random crops and
  config.data.augment.
  """
  _check_config(config)
  if split != 'train':
    raise ValueError(f"kpn_isp trains on split 'train' (evaluation reads "
                     f'the test split itself), got {split!r}.')
  data = config.data
  if data.batch_size % process_count:
    raise ValueError(f'config.data.batch_size={data.batch_size} does not '
                     f'split over {process_count} processes.')
  return pipeline_lib.Pipeline(
      PairFolder(dataset_root(config), split='train',
                 white_balance=data.white_balance),
      per_device_batch=data.batch_size // process_count,
      patch_size=data.patch_size, augment=tuple(data.augment),
      seed=config.seed, local_device_count=1, process_index=process_index,
      process_count=process_count, num_workers=data.num_workers,
      prefetch=data.prefetch)


# --- state and step -------------------------------------------------------------


def init(config, rng: jax.Array) -> dict[str, Any]:
  """state = {'step', 'rng', 'params' (the KPN), 'opt_state' (Adam)}."""
  _check_config(config)
  model = _model(config)
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  key_params, key_state = jax.random.split(rng)
  multiple = 2**model.levels
  size = multiple * -(-model.kernel_size // multiple)  # reflect needs > r
  dummy = jnp.zeros((1, size, size, 4), jnp.float32)
  params = jax.jit(lambda key: model.init(key, dummy)['params'])(key_params)
  opt_state = jax.jit(_optimizer(config).init)(params)
  return state_lib.create(params=params, rng=key_state, opt_state=opt_state)


def _objective(model, params, batch, *, l1_weight, ssim_weight):
  prediction = model.apply({'params': params}, batch['raw'])
  target = batch['srgb']
  terms = {'l1': jnp.mean(jnp.abs(prediction - target))}
  total = l1_weight * terms['l1']
  if ssim_weight:
    terms['ssim'] = jnp.mean(metrics.ssim(prediction, target))
    total = total + ssim_weight * (1.0 - terms['ssim'])
  return total, (terms, prediction)


def make_steps(config) -> list:
  """[train_step]: `train_step(state, batch, rng) -> (state, metrics)`.

  batch holds this device's 'raw' (n, p, p, 4) and 'srgb' (n, 2p, 2p, 3);
  gradients and metrics are averaged over the 'batch' axis. Metrics:
  'loss', 'loss_l1', 'loss_ssim' (the SSIM itself, when weighted), 'psnr'
  (clipped output vs target), gradient / parameter / update norms.
  """
  _check_config(config)
  model = _model(config)
  tx = _optimizer(config)
  objective = functools.partial(_objective, model,
                                l1_weight=float(config.loss.l1),
                                ssim_weight=float(config.loss.ssim))

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    (loss, (terms, prediction)), grads = jax.value_and_grad(
        objective, has_aux=True)(state['params'], batch)
    grads = jax.lax.pmean(grads, AXIS_NAME)
    updates, opt_state = tx.update(grads, state['opt_state'],
                                   state['params'])
    params = optax.apply_updates(state['params'], updates)
    out = {'loss': loss, **{f'loss_{k}': v for k, v in terms.items()},
           'psnr': jnp.mean(metrics.psnr(jnp.clip(prediction, 0.0, 1.0),
                                         batch['srgb']))}
    out = jax.lax.pmean(out, AXIS_NAME)
    out.update(state_lib.diagnostics(grads=grads, params=state['params'],
                                     updates=updates))
    return dict(state, params=params, opt_state=opt_state), out

  return [train_step]


# --- inference ------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('model',))
def _apply(model, params, images):
  return jnp.clip(model.apply({'params': params}, images), 0.0, 1.0)


def render(model: models.KPN, params: Any, raw: Any) -> np.ndarray:
  """One packed raw image (h, w, 4) -> sRGB (2h, 2w, 3) in [0, 1].

  Any size: the input is reflect-padded to a multiple of 2**levels (at
  least the kernel radius + 1) and the output cropped back.
  """
  raw = jnp.asarray(raw, jnp.float32)
  if raw.ndim != 3 or raw.shape[-1] != 4:
    raise ValueError(f'render: expected (h, w, 4) packed raw, got shape '
                     f'{raw.shape}.')
  h, w = raw.shape[:2]
  multiple = 2**model.levels
  pad_h, pad_w = (-h) % multiple, (-w) % multiple
  if pad_h >= h or pad_w >= w:  # reflect needs fewer pads than pixels
    mode = 'edge'
  else:
    mode = 'reflect'
  padded = jnp.pad(raw, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
  return np.asarray(_apply(model, params, padded[None])[0, :2 * h, :2 * w])


@functools.partial(jax.jit, static_argnames=('pattern',))
def _classic(raw, wb_gains, cam_to_srgb, *, pattern):
  metadata = RawMetadata.create(pattern=pattern, black_level=0.0,
                                white_level=1.0, wb_gains=wb_gains,
                                cam_to_srgb=cam_to_srgb)
  return isp_pipeline.process(cfa.unpack(raw, pattern=pattern), metadata)


def classic_render(raw: Any, metadata: RawMetadata) -> np.ndarray:
  """`rawjax.isp.process` on the normalised packed raw: (2h, 2w, 3) sRGB.

  The packed raw is already black-subtracted and in [0, 1], so the mosaic
  is its unpacking with black level 0 and white level 1 (equal to `process`
  on the sensor values with the camera's levels).
  """
  return np.asarray(_classic(jnp.asarray(raw, jnp.float32),
                             metadata.wb_gains, metadata.cam_to_srgb,
                             pattern=metadata.pattern))


@jax.jit
def _scores(prediction, target):
  prediction = jnp.clip(prediction, 0.0, 1.0)
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'delta_e2000': metrics.mean_delta_e2000(
              color.srgb_to_lab(prediction), color.srgb_to_lab(target))}


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Training patches: {'raw' (nearest x2 of the raw visualisation), 'kpn',
  'target'}, each (N, 2p, 2p, 3) in [0, 1], N <= 4."""
  model = _model(config)
  raw = np.asarray(batch['raw'])
  target = np.asarray(batch['srgb'])
  raw = raw.reshape(-1, *raw.shape[-3:])[:4]
  target = target.reshape(-1, *target.shape[-3:])[:4]
  params = jax.tree.map(jnp.asarray, state['params'])
  output = np.asarray(_apply(model, params, jnp.asarray(raw)))
  return {'raw': _show_raw(raw), 'kpn': output, 'target': target}


def _show_raw(raw: np.ndarray) -> np.ndarray:
  vis = np.asarray(color.visualize_raw(raw))
  return np.repeat(np.repeat(vis, 2, axis=-3), 2, axis=-2)


# --- evaluation -----------------------------------------------------------------


_LABELS = {'process': 'rawjax.isp.process (as-shot WB + camera matrix)'}


def _summary(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
  return {**{k: float(np.mean([r[k] for r in rows])) for k in _METRICS},
          **{f'{k}_std': float(np.std([r[k] for r in rows]))
             for k in _METRICS}, 'count': len(rows)}


def _markdown(results: Mapping[str, Any]) -> str:
  lines = [f'# Kernel-prediction ISP: {results["dataset"]}', '',
           f'Step {results["step"]}; {results["num_test_images"]} test '
           f'images ({results["num_with_metadata"]} with metadata for '
           '`process`). Mean +- std over images.', '',
           '| method | PSNR (dB) | SSIM | DeltaE2000 |', '|---|---|---|---|']
  digits = {'psnr': 2, 'ssim': 4, 'delta_e2000': 2}
  labels = dict(_LABELS, kpn='KPN (ours; input white-balanced with the '
                'as-shot gains)' if results['white_balance'] else
                'KPN (ours; raw only)')
  for name, row in results['rows'].items():
    cells = [f'{row[k]:.{digits[k]}f} +- {row[k + "_std"]:.{digits[k]}f}'
             for k in _METRICS]
    lines.append(f'| {labels[name]} | ' + ' | '.join(cells) + ' |')
  if 'kpn_on_metadata_images' in results:
    row = results['kpn_on_metadata_images']
    lines += ['', 'KPN on the same images as `process`: ' + ', '.join(
        f'{k} {row[k]:.{digits[k]}f}' for k in _METRICS) + '.']
  return '\n'.join(lines) + '\n'


def _error_map(prediction, target, gain):
  error = np.abs(np.asarray(prediction) - np.asarray(target)).mean(-1)
  return np.repeat(np.clip(gain * error, 0.0, 1.0)[..., None], 3, axis=-1)


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """KPN vs `process()` on the test split (PSNR, SSIM, DeltaE2000).

  Writes `workdir/results.json` (summary rows and per-image scores),
  `workdir/results.md` and `workdir/grid.png` (rows: the first
  `eval.num_grid_images` test images; columns: raw visualisation,
  `process`, KPN, target, |KPN - target| and |process - target| times
  `eval.error_gain`; centre-cropped to a common size). Returns flat scalars
  'kpn/<metric>' and 'process/<metric>' (the latter only when test images
  carry metadata).
  """
  _check_config(config)
  ev = config.eval
  workdir = pathlib.Path(workdir)
  root = dataset_root(config)
  dataset = PairFolder(root, split=ev.split)
  network_inputs = PairFolder(root, split=ev.split,
                              white_balance=config.data.white_balance)
  model = _model(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  keys = list(dataset.keys)[:ev.max_test_images or None]
  per_image, grid = [], []
  for index, key in enumerate(keys):
    sample = dataset.load(key)
    meta = dataset.metadata(key)
    outputs = {'kpn': render(model, params,
                             network_inputs.load(key)['raw'])}
    if meta is not None:
      outputs['process'] = classic_render(sample['raw'], meta)
    scores = {'name': key}
    for name, image in outputs.items():
      values = _scores(image, sample['srgb'])
      scores[name] = {k: float(values[k]) for k in _METRICS}
    per_image.append(scores)
    if index < ev.num_grid_images:
      target = sample['srgb']
      classic = outputs.get('process', np.zeros_like(target))
      grid.append([_show_raw(sample['raw']), classic, outputs['kpn'], target,
                   _error_map(outputs['kpn'], target, ev.error_gain),
                   _error_map(classic, target, ev.error_gain)])
  rows = {'kpn': _summary([s['kpn'] for s in per_image])}
  with_meta = [s for s in per_image if 'process' in s]
  results = {'dataset': str(root), 'split': ev.split,
             'step': int(np.asarray(state['step'])),
             'num_test_images': len(per_image),
             'num_with_metadata': len(with_meta),
             'white_balance': bool(config.data.white_balance), 'rows': rows,
             'per_image': per_image}
  if with_meta:
    rows['process'] = _summary([s['process'] for s in with_meta])
    results['kpn_on_metadata_images'] = _summary([s['kpn']
                                                  for s in with_meta])
  flat = {f'{name}/{k}': row[k] for name, row in rows.items()
          for k in _METRICS}
  if jax.process_index() == 0:
    from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
    from rawjax.train.loop import image_grid  # pylint: disable=g-import-not-at-top
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'results.json').write_text(json.dumps(results, indent=1) +
                                          '\n')
    (workdir / 'results.md').write_text(_markdown(results))
    if grid:
      h = min(img.shape[0] for row in grid for img in row)
      w = min(img.shape[1] for row in grid for img in row)
      tiles = [_centre_crop(img, h, w) for row in grid for img in row]
      write_image(workdir / 'grid.png',
                  image_grid(np.stack(tiles), columns=len(grid[0])))
  return flat


def _centre_crop(image: np.ndarray, h: int, w: int) -> np.ndarray:
  top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
  return np.asarray(image[top:top + h, left:left + w], np.float32)


@method_lib.register_method('kpn_isp')
def _method() -> method_lib.Method:
  return method_lib.Method(name='kpn_isp', init=init, steps=make_steps,
                           make_data=make_data, evaluate=evaluate,
                           sample_images=sample_images)
