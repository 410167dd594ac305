"""Unsupervised raw-to-raw mapping: CSTPP generators in a CycleGAN.

Xie et al., "Generalizing ISP Model by Unsupervised Raw-to-raw Mapping"
(ACM MM 2024), as the official code trains it (spec section 1.4);
`model.generator='resnet'` swaps in CycleGAN's ResNet generators (the plain
CycleGAN baseline, everything else unchanged):

  * two generators G_AB, G_BA (`rawjax.models.CSTPPGenerator`) sharing the
    backbone (`config.model.sharing`: 'code' = BatchNorm, LayerNorm and the
    head per direction, the official code; 'paper' = only BatchNorm);
  * two discriminators D_A, D_B (`config.model.discriminator`: 'official'
    one score per image, or 'patchgan' CycleGAN's 70 x 70 PatchGAN);
  * generator loss (eqs. 8-11: cycle, identity, LSGAN, total), LSGAN:
      L_G = 10 (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
          +  5 (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)
          + (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2
    (L1 = mean over all elements, squares = mean over scores);
  * discriminator loss (eq. 12) x 0.5 per discriminator, on real images and
    on a history pool of 50 generated images (CycleGAN's ImagePool);
  * Adam(0.5, 0.999), lr G 1e-5, D 2e-5, gradient clipping at global norm 2
    per network, batch 4, no schedule.

Registers two training methods: 'cycle_gan' (configs/raw2raw_cstpp.py, the
raw-to-raw mapping and its Tables 1, 2 and 4) and 'cstpp_adapt'
(configs/cstpp_adapt.py, section 4.3's cross-camera ISP with the trained
generators). The modules, one concept each:

  * `objective`: eqs. 8-12;
  * `config`: the checked config values, the generator, discriminator, Adam;
  * `pool`: the history pool of generated images;
  * `clipping`: the official per-network gradient clipping, as the
    `transform` of `rawjax.train.steps.apply_gradients`;
  * `state`: the train state (init, restore from a workdir);
  * `steps`: the generator and discriminator steps;
  * `data`: the unpaired training stream and its two protocols (the
    official resize-then-patch grid, random crops); the simulated dataset
    is `rawjax.data.simulated.raw2raw`;
  * `inference`: eval-mode translation, the channel view;
  * `evaluation`: Tables 1, 2 (and 4's re-scoring at other M) through
    `rawjax.eval.raw2raw`;
  * `adapt`: the 'cstpp_adapt' method.

Choices where the sources are silent or disagree: docs/cstpp.md.
"""

from __future__ import annotations

from rawjax.methods.cstpp import adapt
from rawjax.methods.cstpp.clipping import clip_generator_grads
from rawjax.methods.cstpp.config import discriminator_model, generator_model
from rawjax.methods.cstpp.data import (
    GridPatches, TrainData, make_data, patch_corners, resize_packed)
from rawjax.methods.cstpp.evaluation import (
    evaluate, evaluate_directions, load_test_pairs, viewed)
from rawjax.methods.cstpp.inference import (
    direction_variables, model_view, sample_images, translate)
from rawjax.methods.cstpp.pool import pool_init, pool_query
from rawjax.methods.cstpp.state import init, restore_state
from rawjax.methods.cstpp.steps import make_steps
from rawjax.train import method as method_lib

__all__ = [
    'GridPatches', 'TrainData', 'adapt', 'clip_generator_grads',
    'direction_variables', 'discriminator_model', 'evaluate',
    'evaluate_directions', 'generator_model', 'init', 'load_test_pairs',
    'make_data', 'make_steps', 'model_view', 'patch_corners', 'pool_init',
    'pool_query', 'resize_packed', 'restore_state', 'sample_images',
    'translate', 'viewed',
]


method_lib.register('cycle_gan', init=init, steps=make_steps,
                    make_data=make_data, evaluate=evaluate,
                    sample_images=sample_images)
# Section 4.3's cross-camera ISP: no sample images (its grids are in eval/).
method_lib.register('cstpp_adapt', init=adapt.init, steps=adapt.make_steps,
                    make_data=adapt.make_data, evaluate=adapt.evaluate)
