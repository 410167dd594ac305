"""Unsupervised raw-to-raw mapping: CSTPP generators in a CycleGAN.

    python -m launch.train --config=configs/raw2raw_cstpp.py --workdir=DIR
    python -m launch.train --config=configs/raw2raw_cstpp.py:quick --workdir=DIR

The default variant has the paper's settings (Xie et al., ACM MM 2024, and
the official code): Conformer backbone (conv 64-128-256, embed 256, patch
16, 4 heads, depth 6, qkv without bias), 14-term CSTPP head, M = 1, official
discriminator, Adam(0.5, 0.999), lr G 1e-5 / D 2e-5, clipping at 2, batch 4
of 256 x 256 packed patches, 50 epochs over the 392 unpaired images, on a
paper-sized simulated raw2raw dataset (`--config.data.root=PATH
--config.data.cameras=iphone-x,samsung-s9` for Afifi's data). The data
protocol is the official preprocessing (`data.protocol='resize_patches'`):
each packed image resized to 384 x 512 (cv2's (512, 384) = (width,
height)), then the fixed grid of 256 x 256 patches covering it (rows 0 and
128, columns 0 and 256: 4 patches per image), every patch once per epoch:
196 steps per epoch, 9,800 in 50 epochs. The simulated images are 768 x
1024 mosaics (384 x 512 packed, Afifi's 4:3), so the resize is exact there.
`--config.data.protocol=random_crops` takes one random 256 x 256 crop of
the full-resolution image per image and step instead (49 steps per epoch;
set `--config.train.num_steps=2450` for 50 such epochs).
`--config.data.synthetic.preset=multi_illum` simulates the LSMI-like
multi-illuminant setting (Table 2).

'quick' (minutes on this 2-core CPU) differs in: the synthetic
multi-illuminant preset at 256 x 256 mosaics (128 x 128 packed), 120
scenes; 64 x 64 patches; a smaller backbone (stem 16, conv 16-32-64, embed
64, 2 heads, depth 3) and discriminator width 16; lr x 20 (G 2e-4,
D 4e-4); 500 iterations; random 64 x 64 crops (`data.protocol=
'random_crops'`, the protocol of the published quick figures in
docs/cstpp.md). Everything else (losses, weights, pool, clipping, sharing,
the head) is the paper's.

Options: model.sharing ('code' | 'paper' | 'none'), model.kernel
('cstpp14' | 'cstpp14_code' | ...), model.in_channels (3 = RGB variant,
10 terms), model.discriminator ('official' | 'patchgan'),
model.downsample (M), model.transform ('patch' | 'global'),
optim.clip ('per_network' | 'union'), data.quantize_8bit,
model.generator ('cstpp' | 'resnet': CycleGAN's ResNet generator, with
model.resnet_features, model.resnet_blocks and model.sharing='none'),
data.protocol ('resize_patches' | 'random_crops'), data.resize_to ((H, W)
packed, or () for the grid of the full-resolution image),
data.resize_method ('area' | 'bilinear'), data.patch_grid ('cover'
| 'disjoint').

The method: `rawjax.methods.cstpp` (docs/cstpp.md); the cross-camera ISP
experiment of section 4.3 is configs/cstpp_adapt.py.
"""

import ml_collections

from rawjax.train.config import base_config, set_run_length, unknown_variant

# Afifi's unpaired set: 196 images per camera, batch 4 (drop_last); the
# official preprocessing cuts 4 patches from each (384 x 512 in the 'cover'
# grid of 256: rawjax.methods.cstpp.data.patch_corners).
_PAPER_EPOCHS = 50  # the paper; the official main.py defaults to 40
_PAPER_PATCHES_PER_IMAGE = 4
_PAPER_STEPS_PER_EPOCH = 196 * _PAPER_PATCHES_PER_IMAGE // 4


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = base_config()
  config.method = 'cycle_gan'
  config.seed = 114514  # the official seed

  config.model = ml_collections.ConfigDict(dict(
      in_channels=4,          # packed (R, Gr, Gb, B); 3 = RGB variant
      kernel='',              # '' = 'cstpp14' (4 ch) / 'cheung10' (3 ch);
                              # 'cstpp14_code' = the official duplicated term
      downsample=1,           # M
      base_channels=32, channel_ratio=2,  # conv branch 64-128-256
      stem_channels=64,
      embed_dim=256, depth=6, num_heads=4, mlp_ratio=4.0, qkv_bias=False,
      sharing='code',         # 'code': BN, LN, head per direction;
                              # 'paper': only BN; 'none'
      sync_batch_norm=True,   # BN statistics over the global batch
      discriminator='official',  # or 'patchgan' (CycleGAN 70x70)
      discriminator_features=64,
      transform='patch',      # 'global': one parameter set per image (the
                              # spatially uniform comparison of Table 2)
      generator='cstpp',      # 'resnet': CycleGAN's ResNet generator (the
                              # plain CycleGAN baseline; sharing='none')
      resnet_features=64,     # its ngf (CycleGAN: 64)
      resnet_blocks=9,        # resnet_9blocks (CycleGAN's default)
  ))

  config.data = ml_collections.ConfigDict(dict(
      root='', cameras=(), cache_dir='',
      synthetic=ml_collections.ConfigDict(dict(
          preset='raw2raw', num_scenes=529, seed=0, height=768,
          width=1024)),        # mosaic: 384 x 512 packed, the resize size
      patch_size=256,         # packed pixels
      protocol='resize_patches',  # the official preprocessing; or
                              # 'random_crops' of the full-resolution image
      resize_to=(384, 512),   # packed (H, W); () = no resize
      resize_method='area',   # or 'bilinear' (cv2's INTER_LINEAR)
      patch_grid='cover',     # or 'disjoint' (drops the remainder)
      batch_size=4,           # global
      pool_size=50,
      augment=('vflip', 'hflip', 'rot90'),
      quantize_8bit=False,    # the official loader's 8-bit side effect
      num_workers=2, prefetch=2,
      # grain worker processes decoding batches (0: in this process).
      worker_count=0,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      generator_lr=1e-5, discriminator_lr=2e-5, b1=0.5, b2=0.999, eps=1e-8,
      clip_norm=2.0,
      clip='per_network',     # or 'union' (one norm over both generators)
      # Adam over one flat vector per network (optax.flatten): the same
      # update, a fifth fewer ops to compile. False resumes checkpoints
      # written before this option (their Adam state is per tensor).
      flatten=True,
  ))

  config.loss = ml_collections.ConfigDict(dict(cycle=10.0, identity=5.0,
                                               gan=1.0))

  config.eval = ml_collections.ConfigDict(dict(
      split='test', max_test_images=0, num_grid_images=4, error_gain=10.0))

  set_run_length(config, num_steps=_PAPER_EPOCHS * _PAPER_STEPS_PER_EPOCH,
                 checkpoint_every=500, log_every=50, images_every=500)

  if variant == 'quick':
    config.data.synthetic.update(preset='multi_illum', num_scenes=120,
                                 height=256, width=256)
    config.data.patch_size = 64
    # The published quick figures were measured with random crops.
    config.data.protocol = 'random_crops'
    config.model.update(base_channels=8, channel_ratio=2, stem_channels=16,
                        embed_dim=64, depth=3, num_heads=2,
                        discriminator_features=16)
    config.optim.generator_lr = 2e-4
    config.optim.discriminator_lr = 4e-4
    set_run_length(config, num_steps=500, checkpoint_every=250,
                   log_every=25, images_every=250)
  elif variant:
    raise unknown_variant(variant, 'configs/raw2raw_cstpp.py')
  return config
