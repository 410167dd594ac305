"""What the method tests share: configs, pmapped steps, tiny datasets.

Every method test runs its steps as the loop does (pmapped over host
devices with the state replicated and the batch split between them) and
checks the same invariants of one step; the raw-to-raw methods read the
same tiny raw2raw layout, in which camera B sees a fixed 3x3 colour matrix
of camera A's (R, G, B).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import io as scipy_io

CAMERAS = ('cam-a', 'cam-b')
MATRIX = np.array([[0.8, 0.15, 0.0], [0.1, 0.7, 0.1], [0.0, 0.2, 0.75]],
                  np.float32)  # B's (R, G, B) = MATRIX @ A's


# --- configs ------------------------------------------------------------------


def paper_and_quick(configs, method):
  """The paper ('') and 'quick' variants, both registered as `method`."""
  paper, quick = configs.get_config(), configs.get_config('quick')
  assert paper.method == quick.method == method
  return paper, quick


def tiny_config(configs, variant, root, *, grid_images, **data):
  """The variant's config on the tiny dataset at `root`, one data worker."""
  config = configs.get_config(variant)
  config.data.update(root=str(root), num_workers=1, **data)
  config.eval.num_grid_images = grid_images
  return config


def assert_configs_reject_typos(configs, variants, typos):
  """Locked variants name a mistyped key; an unknown variant is named.

  Args:
    configs: the config module (`get_config`).
    variants: built configs, locked here as config_flags(lock_config=True)
      does.
    typos: {'section.mistyped_key': value}.
  """
  for config in variants:
    config.lock()
    for dotted, value in typos.items():
      section, key = dotted.split('.')
      with pytest.raises(AttributeError, match=key):
        setattr(getattr(config, section), key, value)
  with pytest.raises(ValueError, match="unknown variant 'fast'"):
    configs.get_config('fast')


# --- pmapped steps ------------------------------------------------------------


def replicate(tree, n):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)),
                      tree)


def shard(batch, n):
  """A (batch, ...) batch as (n devices, batch / n, ...)."""
  return {k: v.reshape(n, -1, *v.shape[1:]) for k, v in batch.items()}


def merge_devices(tree):
  """A (devices, per-device batch, ...) tree as (batch, ...)."""
  return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)


def unreplicate(tree):
  return jax.tree.map(lambda x: np.asarray(x[0]), tree)


def four_devices():
  devices = jax.local_devices()[:4]
  assert len(devices) == 4
  return devices


def pmap_step(step, state, batch, *, devices, seed=1):
  """`step(state, batch, rng)` pmapped over `devices`, as the loop runs it.

  The state is replicated, the batch split between the devices, and every
  device gets the same key (the steps fold in the device index).
  """
  n = len(devices)
  p_step = jax.pmap(step, axis_name='batch', devices=devices)
  return p_step(replicate(state, n), shard(batch, n),
                jnp.stack([jax.random.PRNGKey(seed)] * n))


def assert_replicas_agree(metrics, keys, *, rtol):
  """Finite `keys` of the pmapped metrics, equal on every device."""
  metrics = jax.tree.map(np.asarray, metrics)
  for key in keys:
    assert np.all(np.isfinite(metrics[key])), key
    np.testing.assert_allclose(metrics[key], metrics[key][0], rtol=rtol)
  return metrics


def assert_every_parameter_moved(new, old):
  """Each leaf of the pmapped `new` params differs from `old` somewhere."""
  changed = jax.tree.map(lambda a, b: float(np.abs(a[0] - b).max()),
                         new['params'], old['params'])
  assert all(c > 0 for c in jax.tree.leaves(changed))


# --- tiny datasets ------------------------------------------------------------


def smooth_rgb(rng, size, *, base, amplitude, clip, phase=False, margin=0):
  """A smooth random (size + margin)^2 x 3 float64 scene: a sinusoid a channel.

  Coordinates step by 1 / size (a margin extends the same scene). Per
  channel the draws are, in order: the base level (uniform over `base`), the
  amplitude (when `amplitude` is a range), the two spatial frequencies and,
  with `phase`, a phase; the tests' fixed data depend on this order.
  """
  yy, xx = np.mgrid[0:size + margin, 0:size + margin] / size
  channels = []
  for _ in range(3):
    level = rng.uniform(*base)
    scale = (rng.uniform(*amplitude) if isinstance(amplitude, tuple) else
             amplitude)
    angle = 2 * np.pi * (rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy)
    if phase:
      angle = angle + rng.uniform(0, 6)
    channels.append(np.clip(level + scale * np.sin(angle), *clip))
  return np.stack(channels, -1)


def pack_rgb(rgb):
  """(..., 3) RGB as packed float32 (R, G, G, B): greens equal."""
  r, g, b = np.moveaxis(rgb, -1, 0)
  return np.stack([r, g, g, b], -1).astype(np.float32)


def camera_b(packed_a):
  """Camera B's packed raw of the scene camera A saw: MATRIX @ (R, G, B)."""
  rgb = np.stack([packed_a[..., 0], packed_a[..., 1], packed_a[..., 3]], -1)
  return pack_rgb(rgb @ MATRIX.T)


def write_mat(folder, name, packed, meta=None):
  """folder/name.mat ('raw_rggb') and, with `meta`, ../meta/name.npz."""
  folder.mkdir(parents=True, exist_ok=True)
  scipy_io.savemat(folder / f'{name}.mat', {'raw_rggb': packed})
  if meta is not None:
    (folder.parent / 'meta').mkdir(exist_ok=True)
    np.savez(folder.parent / 'meta' / f'{name}.npz', **meta)


def write_raw2raw(root, scene, *, paired, unpaired, paired_meta,
                  unpaired_meta=None):
  """A raw2raw layout of both CAMERAS; B's raw is `camera_b` of A's.

  Args:
    root: the dataset folder.
    scene: () -> camera A's packed raw, drawn in the order written.
    paired: {'anchor': count, 'test': count} of pairs.
    unpaired: unpaired images a camera.
    paired_meta: (split, index, image) -> the pair's meta/*.npz arrays.
    unpaired_meta: image -> meta/*.npz arrays, or None for none.
  """
  for split, folder in (('anchor', 'anchor-raw-rggb'), ('test', 'raw-rggb')):
    for i in range(paired[split]):
      name = f'{split}-{i}_{"AB"[i % 2]}'
      a = scene()
      for camera, image in zip(CAMERAS, (a, camera_b(a))):
        write_mat(root / 'paired' / camera / folder, name, image,
                  paired_meta(split, i, image))
  for camera in CAMERAS:
    for i in range(unpaired):
      a = scene()
      image = a if camera == CAMERAS[0] else camera_b(a)
      write_mat(root / 'unpaired' / camera / 'raw-rggb', f'u-{i}', image,
                None if unpaired_meta is None else unpaired_meta(image))
  (root / 'dataset.json').write_text(json.dumps(
      {'cameras': [{'slug': c} for c in CAMERAS]}))
