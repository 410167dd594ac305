"""An independent PyTorch NAFNet, written from the architecture description.

Tests only: random weights, compared with `rawjax.models.NAFNet` after
`rawjax.convert.convert_nafnet`. The module structure reproduces the
official state-dict keys (`intro`, `encoders.i.j.*`, `downs.i`,
`middle_blks.j.*`, `ups.i.0` (+ a parameterless PixelShuffle at `ups.i.1`),
`decoders.i.j.*`, `ending`; inside a block `norm1`, `conv1`, `conv2`
(depthwise), `sca.1` (after an AdaptiveAvgPool2d at `sca.0`), `conv3`,
`norm2`, `conv4`, `conv5`, `beta`, `gamma`). LayerNorm2d is written with
plain tensor ops (the official one is a custom autograd Function with the
same forward). Inputs are NCHW.
"""

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):

  def __init__(self, channels, eps=1e-6):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(channels))
    self.bias = nn.Parameter(torch.zeros(channels))
    self.eps = eps

  def forward(self, x):
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    y = (x - mu) / (var + self.eps).sqrt()
    return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


def simple_gate(x):
  a, b = x.chunk(2, dim=1)
  return a * b


class NAFBlock(nn.Module):

  def __init__(self, c):
    super().__init__()
    dw, ffn = 2 * c, 2 * c
    self.conv1 = nn.Conv2d(c, dw, 1, bias=True)
    self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw, bias=True)
    self.conv3 = nn.Conv2d(dw // 2, c, 1, bias=True)
    self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                             nn.Conv2d(dw // 2, dw // 2, 1, bias=True))
    self.conv4 = nn.Conv2d(c, ffn, 1, bias=True)
    self.conv5 = nn.Conv2d(ffn // 2, c, 1, bias=True)
    self.norm1 = LayerNorm2d(c)
    self.norm2 = LayerNorm2d(c)
    self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
    self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

  def forward(self, inp):
    x = self.conv2(self.conv1(self.norm1(inp)))
    x = simple_gate(x)
    x = x * self.sca(x)
    x = self.conv3(x)
    y = inp + x * self.beta
    x = simple_gate(self.conv4(self.norm2(y)))
    return y + self.conv5(x) * self.gamma


class NAFNetTorch(nn.Module):

  def __init__(self, img_channel=3, width=16, middle_blk_num=1,
               enc_blk_nums=(), dec_blk_nums=()):
    super().__init__()
    self.intro = nn.Conv2d(img_channel, width, 3, padding=1, bias=True)
    self.ending = nn.Conv2d(width, img_channel, 3, padding=1, bias=True)
    self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
    self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
    chan = width
    for num in enc_blk_nums:
      self.encoders.append(nn.Sequential(*[NAFBlock(chan)
                                           for _ in range(num)]))
      self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2, bias=True))
      chan *= 2
    self.middle_blks = nn.Sequential(*[NAFBlock(chan)
                                       for _ in range(middle_blk_num)])
    for num in dec_blk_nums:
      self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False),
                                    nn.PixelShuffle(2)))
      chan //= 2
      self.decoders.append(nn.Sequential(*[NAFBlock(chan)
                                           for _ in range(num)]))
    self.multiple = 2**len(enc_blk_nums)

  def forward(self, inp):
    h, w = inp.shape[-2:]
    m = self.multiple
    inp = F.pad(inp, (0, (m - w % m) % m, 0, (m - h % m) % m))
    x = self.intro(inp)
    skips = []
    for encoder, down in zip(self.encoders, self.downs):
      x = encoder(x)
      skips.append(x)
      x = down(x)
    x = self.middle_blks(x)
    for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
      x = decoder(up(x) + skip)
    x = self.ending(x) + inp
    return x[:, :, :h, :w]
