"""LiteISPNet + GCM on ZRR (Zhang et al., ICCV 2021, "RAW-to-sRGB").

    python -m launch.train --config=configs/liteisp_zrr.py --workdir=DIR \
        --config.data.root=/data/ZRR --config.loss.vgg_weights=vgg19.npz
    python -m launch.train --config=configs/liteisp_zrr.py:quick --workdir=DIR
    python -m launch.train --config=configs/liteisp_zrr.py:quick --workdir=DIR2 \
        --config.align.method=none        # the no-alignment ablation

The default variant has the released code's settings (train_zrr.sh): whole
448x448 ZRR pairs, batch 16, flips and transposes, separate Adam (1e-4,
betas 0.9/0.999) for LiteISPNet and GCM halved every 40 epochs, 80 epochs
(2,927 steps each), L = L_GCM + L1 + VGG(relu5_4, x0.5) + 0.15 (1 - SSIM).
It needs `data.root` (the ZRR download) and `loss.vgg_weights` (Flax
parameters from `python -m rawjax.convert vgg19 vgg19-dcbb9e9d.pth
vgg19.npz`). The aligner defaults to the weight-free pyramid flow; the
reference's PWC-Net: `--config.align.method=pwcnet
--config.align.weights=pwc.npz`. LiteISPGAN: `--config.gan.enabled=True`.
LPIPS in the evaluation: `--config.eval.lpips_weights=lpips.npz` (from
`python -m rawjax.convert lpips alexnet-owt-7be5be79.pth lpips.npz
--lpips-lin=alex.pth`).

'quick' trains a narrow LiteISPNet on a small simulated ZRR-layout dataset
whose targets are rendered by another camera and misaligned by a known
smooth warp (`rawjax.data.simulated.zrr.ensure_synthetic_zrr`), without the
VGG term (no pretrained weights offline), and evaluates it against the true
aligned targets, on this 2-core CPU in minutes.

The method: `rawjax.methods.liteisp` (docs/liteisp.md).
"""

import ml_collections

from rawjax.train.config import base_config, set_run_length, unknown_variant

_ZRR_TRAIN_PAIRS = 46_839


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = base_config()
  config.method = 'liteisp'
  config.seed = 0

  config.model = ml_collections.ConfigDict(dict(
      name='liteisp', channels=(64, 128, 128), num_blocks=4, reduction=16,
      coord=True))
  config.gcm = ml_collections.ConfigDict(dict(
      name='gcm', guide_features=32, features=64, coord=True))
  # LiteISPGAN: the PatchGAN discriminator and 0.01 LSGAN in the total.
  config.gan = ml_collections.ConfigDict(dict(
      enabled=False, weight=0.01, features=64, num_layers=3))

  config.align = ml_collections.ConfigDict(dict(
      method='pyramid',   # 'pyramid' (weight-free), 'pwcnet', 'none'
      weights='',         # PWC-Net parameters for 'pwcnet'
      options={},         # keyword options of the flow estimator
      mask_eps=1e-3,      # eq. 6
      # Training warp: 'zeros' (the reference's backwarp: zero padding, the
      # validity mask drops the border strip the flow leaves) or 'border'
      # (clamped sampling, every pixel supervised). Both sample at
      # x + u W/(W-1) as the reference (`align_target`'s
      # reference_scaling). Evaluation always uses 'zeros'.
      padding='zeros',
  ))

  config.loss = ml_collections.ConfigDict(dict(
      gcm=1.0, l1=1.0, vgg=1.0, ssim=0.15,
      vgg_weights='',     # Flax VGG-19 parameters (rawjax.convert vgg19)
      vgg_layer='relu5_4',
  ))

  config.optim = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.9, b2=0.999, eps=1e-8,
      decay_epochs=40, decay_factor=0.5, epochs=80))

  config.data = ml_collections.ConfigDict(dict(
      root='',            # ZRR layout; '' = the simulated dataset below
      cache_dir='',       # '' = $RAWJAX_DATA_DIR or ~/.cache/rawjax
      synthetic=ml_collections.ConfigDict(dict(
          preset='raw2srgb', num_train=1600, num_test=64, seed=0, size=448,
          max_shift=6.0)),
      batch_size=16,
      patch_size=0,       # 0 = whole samples (ZRR's 448x448)
      augment=('hflip', 'vflip', 'transpose'),
      steps_per_epoch=_ZRR_TRAIN_PAIRS // 16,   # 0 = len(train) // batch
      num_workers=4,
      # grain worker processes decoding batches (0: in this process).
      worker_count=0,
      prefetch=2,
  ))

  config.eval = ml_collections.ConfigDict(dict(
      split='test',
      aligner='',         # '' = the training aligner ('pyramid' for 'none')
      max_images=0,       # 0 = all
      num_grid_images=4,
      crop_border=0,      # > 0: also score the true aligned GT (simulated
                          # data) without this border
      # LPIPS (AlexNet, v0.1) parameters: the .npz of `python -m
      # rawjax.convert lpips alexnet-owt-7be5be79.pth lpips.npz
      # --lpips-lin=alex.pth`; '' = no LPIPS column.
      lpips_weights='',
  ))

  config.inference = ml_collections.ConfigDict(dict(
      tile=256, overlap=32, batch_tiles=1))

  set_run_length(config,
                 num_steps=config.optim.epochs * config.data.steps_per_epoch,
                 eval_every=config.data.steps_per_epoch,
                 checkpoint_every=config.data.steps_per_epoch, log_every=50,
                 images_every=1000)

  if variant == 'quick':
    config.model.channels = (16, 32, 32)
    config.model.num_blocks = 2
    config.model.reduction = 4
    # 128 x 128 pairs (64 x 64 packed raw): at 64 x 64 the 3 px border
    # strip the flow leaves is a fifth of the frame.
    config.data.synthetic.update(num_train=128, num_test=16, size=128,
                                 max_shift=3.0)
    config.data.batch_size = 4
    config.data.steps_per_epoch = 0   # 128 // 4 = 32
    config.data.num_workers = 2
    config.loss.vgg = 0.0             # no pretrained VGG-19 offline
    # Shifts of at most 3 px at 64x64: three pyramid levels and two warping
    # iterations align as well as the defaults at less than half the cost.
    config.align.options = {'levels': 3, 'iterations': 2}
    # The border strip supervised too (measured in docs/liteisp.md: with
    # the reference's zero padding and mask the aligned run loses
    # full-frame PSNR to the unaligned one; with 'border' it wins).
    config.align.padding = 'border'
    config.optim.learning_rate = 5e-4
    config.optim.epochs = 24
    config.optim.decay_epochs = 15
    config.eval.crop_border = 4       # > max_shift: the never-masked interior
    set_run_length(config, num_steps=24 * 32, eval_every=0,
                   checkpoint_every=128, log_every=16, images_every=0)
  elif variant:
    raise unknown_variant(variant, 'configs/liteisp_zrr.py')
  return config
