"""The networks and optimisers a SemiISP config builds.

f_ISP is the PQDynamicISP parameter network (`rawjax.models.PQDynamicNet`),
trained in phase 1 in both variants; the target model of phases 2 and 3 is
any registered model (`config.model`).
"""

from __future__ import annotations

import types

import optax

from rawjax import models
from rawjax.methods.semiisp.config import fine_tuning
from rawjax.models import pqdynamic_net

__all__ = [
    'isp_model', 'isp_variants', 'optimizer', 'phase_optimizer',
    'target_model',
]


def isp_variants(config) -> tuple[str, ...]:
  """The f_ISP variants phase 1 trains together: ('global', 'local').

  Both, always: USQ needs the local encoder, the inversion the global or
  local sets, and one phase-1 checkpoint then serves every phase-2 setting
  (`pseudo.*` may change between the phases).
  """
  del config
  return pqdynamic_net.VARIANTS


def isp_model(config, variant: str) -> pqdynamic_net.PQDynamicNet:
  """f_ISP of `variant`; with f_IT (45 parameters) for task 'enhance'."""
  return pqdynamic_net.PQDynamicNet(variant=variant,
                                    with_itm=config.task == 'enhance',
                                    **dict(config.isp_model))


def target_model(config):
  """The target model of phases 2 and 3 (`config.model`)."""
  return models.model_from_config(config.model)


def optimizer(section, num_steps: int) -> optax.GradientTransformation:
  """AdamW, cosine annealing from the learning rate to final_fraction x.

  `section`: learning_rate, final_fraction, weight_decay (Tables 5/6).
  """
  schedule = optax.cosine_decay_schedule(
      section.learning_rate, decay_steps=max(1, num_steps),
      alpha=section.final_fraction)
  return optax.adamw(schedule, weight_decay=section.weight_decay)


def phase_optimizer(config) -> optax.GradientTransformation:
  """The optimiser of `config.phase` over `train.num_steps` steps."""
  section = config[config.phase]
  if fine_tuning(config):
    section = types.SimpleNamespace(
        learning_rate=section.finetune_learning_rate,
        final_fraction=section.final_fraction,
        weight_decay=section.weight_decay)
  return optimizer(section, config.train.num_steps)
