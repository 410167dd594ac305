"""An independent PyTorch PWC-Net: sniklaus pytorch-pwc's `Network`.

Tests only: random weights, compared with `rawjax.models.pwcnet` after
`rawjax.convert.convert_pwcnet`. Written from the description of sniklaus'
`run.py` (the file cszhilu1998/RAW-to-sRGB copies as `pwc/run.py` and
`models/pwc_net.py`), with the module attributes named as there, so the
state-dict keys are the renamed ones RAW-to-sRGB loads
('netExtractor.netOne.0.weight', 'netTwo.netUpfeat.weight',
'netRefiner.netMain.12.bias', ...; the released file says 'module' for 'net').

Differences from the original, none numerical:
  * the cost volume is computed in pure torch (shift a zero-padded copy of
    the second features, multiply, average over channels) instead of the
    cupy kernel `correlation.FunctionCorrelation`; same channel order
    (dy + 4) * 9 + (dx + 4) and the same division by the channel count;
  * no checkpoint is loaded in `__init__` and nothing is moved to CUDA;
  * `forward(..., return_levels=True)` also returns, per decoder (coarse to
    fine), its flow and the fraction of pixels the backwarp mask kept.

Inputs are NCHW float32, in the channel order the weights expect (the
original Caffe weights: BGR in [0, 1]; RAW-to-sRGB feeds RGB).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

# fltBackwarp per level: [None, None, None, 5.0, 2.5, 1.25, 0.625][level + 1].
BACKWARP = [None, None, None, 5.0, 2.5, 1.25, 0.625, None]


def lrelu():
  return nn.LeakyReLU(negative_slope=0.1, inplace=False)


def correlation(first, second, max_displacement=4):
  """(N, C, H, W) x2 -> (N, 81, H, W), sniklaus' correlation layer.

  out[n, (p + 4) * 9 + (o + 4), y, x] =
      sum_c first[n, c, y, x] * second[n, c, y + p, x + o] / C,
  with second zero outside the image (the kernel pads by 4 with zeros).
  """
  d = max_displacement
  _, c, h, w = first.shape
  padded = F.pad(second, (d, d, d, d))
  out = []
  for p in range(-d, d + 1):  # vertical offset: top_channel / 9 - 4
    for o in range(-d, d + 1):  # horizontal offset: top_channel % 9 - 4
      shifted = padded[:, :, d + p:d + p + h, d + o:d + o + w]
      out.append((first * shifted).sum(1) / c)
  return torch.stack(out, 1)


def backwarp(tenInput, tenFlow, return_mask=False):
  """sniklaus' `backwarp` (current pytorch-pwc, align_corners=False).

  Samples tenInput at pixel (x + u W/(W-1), y + v H/(H-1)): the base grid is
  the pixel centres of align_corners=False but the flow is normalised by
  (W - 1) / 2. A ones channel warped along gives the mask (> 0.999 -> 1,
  else 0) the output is multiplied by.
  """
  n, _, h, w = tenFlow.shape
  hor = torch.linspace(-1.0 + (1.0 / w), 1.0 - (1.0 / w), w,
                       dtype=tenFlow.dtype).view(1, 1, 1, -1).expand(
                           n, -1, h, -1)
  ver = torch.linspace(-1.0 + (1.0 / h), 1.0 - (1.0 / h), h,
                       dtype=tenFlow.dtype).view(1, 1, -1, 1).expand(
                           n, -1, -1, w)
  grid = torch.cat([hor, ver], 1)
  partial = tenFlow.new_ones([n, 1, h, w])
  tenFlow = torch.cat([
      tenFlow[:, 0:1] / ((tenInput.shape[3] - 1.0) / 2.0),
      tenFlow[:, 1:2] / ((tenInput.shape[2] - 1.0) / 2.0)], 1)
  tenInput = torch.cat([tenInput, partial], 1)
  tenOutput = F.grid_sample(
      tenInput, (grid + tenFlow).permute(0, 2, 3, 1), mode='bilinear',
      padding_mode='zeros', align_corners=False)
  mask = tenOutput[:, -1:].clone()
  mask[mask > 0.999] = 1.0
  mask[mask < 1.0] = 0.0
  out = tenOutput[:, :-1] * mask
  return (out, mask) if return_mask else out


class Extractor(nn.Module):
  CHANNELS = (16, 32, 64, 96, 128, 196)
  NAMES = ('netOne', 'netTwo', 'netThr', 'netFou', 'netFiv', 'netSix')

  def __init__(self):
    super().__init__()
    cin = 3
    for name, c in zip(self.NAMES, self.CHANNELS):
      setattr(self, name, nn.Sequential(
          nn.Conv2d(cin, c, 3, stride=2, padding=1), lrelu(),
          nn.Conv2d(c, c, 3, stride=1, padding=1), lrelu(),
          nn.Conv2d(c, c, 3, stride=1, padding=1), lrelu()))
      cin = c

  def forward(self, x):
    out = []
    for name in self.NAMES:
      x = getattr(self, name)(x)
      out.append(x)
    return out


# Channels entering a level's DenseNet block: 81 + first features + 2 + 2.
_CURRENT = [None, None, 81 + 32 + 2 + 2, 81 + 64 + 2 + 2, 81 + 96 + 2 + 2,
            81 + 128 + 2 + 2, 81, None]
_DENSE = (128, 128, 96, 64, 32)


class Decoder(nn.Module):

  def __init__(self, level):
    super().__init__()
    previous = _CURRENT[level + 1]
    current = _CURRENT[level]
    if level < 6:
      self.netUpflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
      self.netUpfeat = nn.ConvTranspose2d(previous + sum(_DENSE), 2, 4,
                                          stride=2, padding=1)
      self.fltBackwarp = BACKWARP[level + 1]
    cin = current
    for name, c in zip(('netOne', 'netTwo', 'netThr', 'netFou', 'netFiv'),
                       _DENSE):
      setattr(self, name, nn.Sequential(nn.Conv2d(cin, c, 3, 1, 1), lrelu()))
      cin += c
    self.netSix = nn.Sequential(nn.Conv2d(cin, 2, 3, 1, 1))

  def forward(self, first, second, previous):
    valid = 1.0
    if previous is None:
      feat = F.leaky_relu(correlation(first, second), 0.1)
    else:
      flow = self.netUpflow(previous['tenFlow'])
      feat = self.netUpfeat(previous['tenFeat'])
      warped, mask = backwarp(second, flow * self.fltBackwarp,
                              return_mask=True)
      valid = float(mask.mean())
      volume = F.leaky_relu(correlation(first, warped), 0.1)
      feat = torch.cat([volume, first, flow, feat], 1)
    for name in ('netOne', 'netTwo', 'netThr', 'netFou', 'netFiv'):
      feat = torch.cat([getattr(self, name)(feat), feat], 1)
    return {'tenFlow': self.netSix(feat), 'tenFeat': feat, 'valid': valid}


class Refiner(nn.Module):

  def __init__(self):
    super().__init__()
    layers = []
    cin = _CURRENT[2] + sum(_DENSE)
    spec = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1))
    for c, dilation in spec:
      layers += [nn.Conv2d(cin, c, 3, 1, padding=dilation, dilation=dilation),
                 lrelu()]
      cin = c
    layers.append(nn.Conv2d(cin, 2, 3, 1, padding=1, dilation=1))
    self.netMain = nn.Sequential(*layers)

  def forward(self, x):
    return self.netMain(x)


class PWCNetTorch(nn.Module):
  """sniklaus' `Network`: forward returns the level-2 flow / 20 + refiner."""

  def __init__(self):
    super().__init__()
    self.netExtractor = Extractor()
    self.netTwo = Decoder(2)
    self.netThr = Decoder(3)
    self.netFou = Decoder(4)
    self.netFiv = Decoder(5)
    self.netSix = Decoder(6)
    self.netRefiner = Refiner()

  def forward(self, first, second, return_levels=False):
    first = self.netExtractor(first)
    second = self.netExtractor(second)
    estimate = None
    levels = []
    for index, name in zip((-1, -2, -3, -4, -5),
                           ('netSix', 'netFiv', 'netFou', 'netThr', 'netTwo')):
      estimate = getattr(self, name)(first[index], second[index], estimate)
      levels.append({'flow': estimate['tenFlow'], 'valid': estimate['valid']})
    flow = estimate['tenFlow'] + self.netRefiner(estimate['tenFeat'])
    return (flow, levels) if return_levels else flow


def estimate(net, first, second):
  """sniklaus' `estimate`, batched: (N, 3, H, W) x2 -> (N, 2, H, W) pixels.

  Resizes to the next multiples of 64 (bilinear, align_corners=False), runs
  the network, resizes its output back to (H, W) the same way, multiplies by
  20 and rescales u by W / W', v by H / H'. `net`: a `PWCNetTorch` or any
  callable (first, second) -> (N, 2, H'/4, W'/4) flow / 20.
  """
  h, w = first.shape[2], first.shape[3]
  h64 = int(math.floor(math.ceil(h / 64.0) * 64.0))
  w64 = int(math.floor(math.ceil(w / 64.0) * 64.0))
  first = F.interpolate(first, size=(h64, w64), mode='bilinear',
                        align_corners=False)
  second = F.interpolate(second, size=(h64, w64), mode='bilinear',
                         align_corners=False)
  flow = 20.0 * F.interpolate(net(first, second), size=(h, w),
                              mode='bilinear', align_corners=False)
  flow[:, 0] *= float(w) / float(w64)
  flow[:, 1] *= float(h) / float(h64)
  return flow
