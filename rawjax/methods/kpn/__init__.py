"""Kernel-prediction ISP (Xing, Li, Zhang, Chen, SIGGRAPH 2022 poster).

A kernel-prediction network (`rawjax.models.KPN`, eqs. 1-2) trained on raw
patches of a phone paired with aligned sRGB patches of a high-end camera,
registered as method 'kpn_isp'. The poster gives no loss, optimiser or
schedule; our choices are docs/kpn.md's:

  * `objective`: L1 (KPCN's choice) + optional weighted 1 - SSIM;
  * `steps`: the train state and the per-device step (Adam, optional
    warm-up + cosine decay);
  * `render`: whole-image KPN inference and the classic pipeline
    (`rawjax.isp.process`) it is compared with;
  * `evaluation`: PSNR, SSIM and CIEDE2000 of both on the test split;
  * `config`, `data`: config checks and the network; batches of
    `rawjax.data.datasets.kpn_pairs.PairFolder` pairs (with
    `config.data.root` empty, the simulator's pairs of
    `rawjax.data.simulated.kpn_pairs`, with `data.alignment.simulate`
    misaligned by a known warp and aligned back by `rawjax.align`).
"""

from __future__ import annotations

from rawjax.methods.kpn.config import check_config, kpn_model
from rawjax.methods.kpn.data import align_config, dataset_root, make_data
from rawjax.methods.kpn.evaluation import evaluate, sample_images
from rawjax.methods.kpn.objective import kpn_loss
from rawjax.methods.kpn.render import classic_render, render
from rawjax.methods.kpn.steps import init, make_steps
from rawjax.train import method as method_lib

__all__ = [
    'align_config', 'check_config', 'classic_render', 'dataset_root', 'evaluate', 'init',
    'kpn_loss', 'kpn_model', 'make_data', 'make_steps', 'render',
    'sample_images',
]


method_lib.register('kpn_isp', init=init, steps=make_steps,
                    make_data=make_data, evaluate=evaluate,
                    sample_images=sample_images)
