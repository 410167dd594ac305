"""An independent PyTorch LPIPS v0.1 (AlexNet), written from the spec.

Tests only: random weights, compared with `rawjax.models.lpips` after
`rawjax.convert.convert_lpips`. `AlexNetFeatures` reproduces torchvision's
`alexnet().features` state-dict keys (features.0/3/6/8/10.{weight,bias});
`LPIPSAlexTorch` holds it as `net` and the lpips package's `lin0..lin4`
(`model` = Sequential[Dropout, Conv2d(C, 1, 1, bias=False)], keys
lin<k>.model.1.weight). Inputs NCHW in [-1, 1].
"""

import torch
from torch import nn

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)


class AlexNetFeatures(nn.Module):
  def __init__(self):
    super().__init__()
    self.features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))

  def forward(self, x):
    taps = []
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in (1, 4, 7, 9, 11):
        taps.append(x)
      if i == 11:
        break
    return taps


class NetLinLayer(nn.Module):
  def __init__(self, channels):
    super().__init__()
    self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1,
                                                       bias=False))

  def forward(self, x):
    return self.model(x)


class LPIPSAlexTorch(nn.Module):
  def __init__(self):
    super().__init__()
    self.net = AlexNetFeatures()
    self.lins = nn.ModuleList([NetLinLayer(c) for c in CHANNELS])
    self.register_buffer('shift', torch.tensor(SHIFT)[None, :, None, None])
    self.register_buffer('scale', torch.tensor(SCALE)[None, :, None, None])

  def lin_state_dict(self):
    """The lpips package's alex.pth layout: lin<k>.model.1.weight."""
    return {f'lin{k}.model.1.weight': lin.model[1].weight.detach().clone()
            for k, lin in enumerate(self.lins)}

  def forward(self, x, y, normalize=False):
    if normalize:
      x, y = 2 * x - 1, 2 * y - 1
    fx = self.net((x - self.shift) / self.scale)
    fy = self.net((y - self.shift) / self.scale)
    total = 0
    for k, (a, b) in enumerate(zip(fx, fy)):
      a = a / (torch.sqrt(torch.sum(a ** 2, dim=1, keepdim=True)) + 1e-10)
      b = b / (torch.sqrt(torch.sum(b ** 2, dim=1, keepdim=True)) + 1e-10)
      total = total + self.lins[k]((a - b) ** 2).mean(dim=(2, 3))
    return total[:, 0]


def make_lpips_alex(seed=0):
  """Random weights (PyTorch default init), non-negative lin weights as the
  released ones, in eval mode (dropout off)."""
  torch.manual_seed(seed)
  model = LPIPSAlexTorch()
  with torch.no_grad():
    for lin in model.lins:
      lin.model[1].weight.abs_()
  return model.eval()
