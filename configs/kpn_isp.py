"""Kernel-prediction ISP (Xing, Li, Zhang, Chen, SIGGRAPH 2022 poster).

    python -m launch.train --config=configs/kpn_isp.py --workdir=DIR \
        --config.data.root=/path/to/aligned-pairs
    python -m launch.train --config=configs/kpn_isp.py:quick --workdir=DIR
    python -m launch.train --config=configs/kpn_isp.py:aligned_quick \
        --workdir=DIR

The poster fixes only the model family (per-pixel predicted kernels, eq.
1-2, after Bako et al.'s KPCN) and the data: 128 x 128 aligned patches
(packed raw 64 x 64), 333K pairs. Everything else is our choice
(docs/kpn.md): a 3-level U-Net predictor of width 32 with global context,
7 x 7 softmax kernels on the packed grid (14 output pixels), L1 loss (KPCN),
Adam 1e-4 with warm-up and cosine decay, 16 patches a step, 200k steps
(about 10 epochs of 333K patches).

`--config.data.root` names a folder with train/ and test/ sub-folders of
.npz pairs ('raw' (h, w, 4), 'srgb' (2h, 2w, 3), see
`rawjax.data.datasets.kpn_pairs.PairFolder`). Empty, the simulator's
'raw2srgb' preset is generated once into the cache and exported into that
layout (`rawjax.data.simulated.kpn_pairs`).

'quick' trains a narrower KPN (5 x 5 kernels) on a small simulated dataset
(one camera, ~100 training images of 128 x 128 packed), with the raw
white-balanced by its as-shot gains, and evaluates it against
`rawjax.isp.process` on this 2-core CPU in about 10 minutes.

`--config.data.root` may be an alignment output (`python -m rawjax.align
--input phone.dng --target camera.png --out ROOT --split train|test`, one
run per image pair): its manifests' kept flags are honoured
(`data.include_rejected=True` trains on the rejected patches too).

'aligned_quick' is the paper's whole data pipeline on the simulator: the
'quick' pairs' targets seen through a known warp (global similarity, smooth
local flow, two local rotations of ~2.5 px per image), aligned back by
`rawjax.align` (64 x 64 patches, flow filter 1.2 px) into KPN pairs, then
trained on (32 x 32 packed, the whole aligned patch) and evaluated on the
aligned test patches (docs/kpn.md).

The method: `rawjax.methods.kpn` (docs/kpn.md).
"""

import ml_collections

from rawjax.train.config import base_config, set_run_length, unknown_variant


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = base_config()
  config.method = 'kpn_isp'
  config.seed = 0

  config.model = ml_collections.ConfigDict(dict(
      name='kpn',
      features=32,
      levels=3,               # packed patches: multiples of 8
      kernel_size=7,          # packed pixels (14 x 14 output pixels)
      normalization='softmax',  # KPCN; 'sum_to_one' or 'none'
      padding='reflect',      # KPCN
      global_context=True,
      output='srgb',          # sRGB OETF after the conditional convolution
      kernel_method='patches',
  ))

  config.data = ml_collections.ConfigDict(dict(
      root='',                # PairFolder root; '' = the simulation below
      camera='',              # simulated camera slug ('' = the first)
      white_balance=False,    # True: the raw is multiplied by its as-shot
                              # white balance ('wb_gains' in every .npz)
      cache_dir='',           # '' = $RAWJAX_DATA_DIR or ~/.cache/rawjax
      include_rejected=False,  # True: also the pairs an alignment manifest
                               # rejects (flow / keypoint / re-alignment)
      # With `root` empty and simulate=True: the simulated pairs misaligned
      # by a known warp and re-aligned by `rawjax.align` (AlignConfig keys;
      # rawjax.data.simulated.kpn_pairs.ensure_aligned_pairs).
      alignment=ml_collections.ConfigDict(dict(
          simulate=False,
          patch_size=64,        # sRGB pixels (the paper's: 128)
          max_flow=1.2,         # px, the paper's PWC-Net threshold
          flow_method='pyramid',  # or 'pwcnet' with pwcnet_weights
          pwcnet_weights='',
          flow_regularization=0.1,  # 'pyramid' on noisy phone images
          min_keypoints=10,     # the scripts' 40 for 128 x 128, per area
          num_rotations=2,      # local rotations per image (warp)
          rotation_shift=2.5,   # px, their mean displacement
      )),
      synthetic=ml_collections.ConfigDict(dict(
          preset='raw2srgb', num_scenes=1000, seed=0, height=512,
          width=512)),
      patch_size=64,          # packed (the dataset's 128 x 128 sRGB patches)
      batch_size=16,          # global
      augment=('hflip', 'vflip', 'transpose'),
      num_workers=2,
      # grain worker processes decoding batches (0: in this process).
      worker_count=0,
      prefetch=2,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.9, b2=0.999, eps=1e-8,
      schedule='cosine', warmup_steps=1000, final_fraction=0.01))

  config.loss = ml_collections.ConfigDict(dict(
      l1=1.0,    # KPCN's loss
      ssim=0.0,  # weight of (1 - SSIM); 0 = off
  ))

  config.eval = ml_collections.ConfigDict(dict(
      split='test',
      max_test_images=0,      # 0 = all
      num_grid_images=4,
      error_gain=5.0,
  ))

  set_run_length(config, num_steps=200_000, eval_every=20_000,
                 checkpoint_every=5_000, log_every=100, images_every=5_000)

  if variant == 'quick':
    # 240 scenes of 256 x 256 (about 30 s to simulate; ~100 training and
    # 52 test images of one camera), a narrower predictor with 5 x 5
    # kernels, 48 x 48 packed patches, a higher learning rate.
    config.data.synthetic.num_scenes = 240
    config.data.synthetic.height = 256
    config.data.synthetic.width = 256
    config.data.patch_size = 48
    config.data.batch_size = 8
    config.model.features = 16
    config.model.kernel_size = 5
    # The network sees the raw multiplied by its as-shot white balance (the
    # simulated illuminants vary widely; raw only, 600 steps on ~100 images
    # learn too little colour constancy to match `process`, which is given
    # the as-shot gains: docs/kpn.md).
    config.data.white_balance = True
    config.optim.learning_rate = 2e-3
    config.optim.warmup_steps = 50
    set_run_length(config, num_steps=600, eval_every=0,
                   checkpoint_every=200, log_every=20, images_every=200)
  elif variant == 'aligned_quick':
    # The 'quick' data, misaligned and aligned back (about 9 patches of
    # 64 x 64 per 256 x 256 image, fewer after the filters); the patch
    # is the whole aligned pair.
    quick = get_config('quick')
    config.model, config.optim = quick.model, quick.optim
    config.data = quick.data
    config.data.alignment.simulate = True
    config.data.patch_size = 32
    config.data.batch_size = 16
    set_run_length(config, num_steps=600, eval_every=0,
                   checkpoint_every=200, log_every=20, images_every=200)
  elif variant:
    raise unknown_variant(
        variant, 'configs/kpn_isp.py',
        choices="'' (paper-ish settings), 'quick' or 'aligned_quick'")
  return config
