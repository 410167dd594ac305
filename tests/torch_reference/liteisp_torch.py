"""An independent PyTorch LiteISPNet and GCM, written from the reference spec.

Tests only: random weights, compared with the Flax models after
`rawjax.convert`. The module structure reproduces the released code's
state-dict keys (`N.seq` unwraps single-module sequences, so `head` is a bare
Conv2d, `down1` a Sequential of [conv, RCAGroup, conv, DWT], an RCAB's
`res` a Sequential [conv, ReLU, conv], ...). Inputs are NCHW, the packed raw
in PyNET order (B, Gb, R, Gr) as the reference trained.
"""

import torch
from torch import nn


def conv3(cin, cout):
  return nn.Conv2d(cin, cout, 3, padding=1, bias=True)


class DWT(nn.Conv2d):
  def __init__(self, channels):
    super().__init__(channels, 4 * channels, 2, 2, groups=channels,
                     bias=False)
    f = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[0.5, 0.5], [-0.5, -0.5]]],
                      [[[0.5, -0.5], [0.5, -0.5]]],
                      [[[0.5, -0.5], [-0.5, 0.5]]]])
    self.weight.data.copy_(f.repeat(channels, 1, 1, 1))
    self.requires_grad_(False)


class IWT(nn.ConvTranspose2d):
  def __init__(self, channels4):
    super().__init__(channels4, channels4 // 4, 2, 2, groups=channels4 // 4,
                     bias=False)
    f = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[0.5, 0.5], [-0.5, -0.5]]],
                      [[[0.5, -0.5], [0.5, -0.5]]],
                      [[[0.5, -0.5], [-0.5, 0.5]]]])
    self.weight.data.copy_(f.repeat(channels4 // 4, 1, 1, 1))
    self.requires_grad_(False)


class CA(nn.Module):
  def __init__(self, c, reduction):
    super().__init__()
    self.conv_du = nn.Sequential(nn.Conv2d(c, c // reduction, 1), nn.ReLU(),
                                 nn.Conv2d(c // reduction, c, 1), nn.Sigmoid())

  def forward(self, x):
    return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class RCAB(nn.Module):
  def __init__(self, c, reduction):
    super().__init__()
    self.res = nn.Sequential(conv3(c, c), nn.ReLU(), conv3(c, c))
    self.ca = CA(c, reduction)

  def forward(self, x):
    return self.ca(self.res(x)) + x


class RG(nn.Module):
  def __init__(self, c, nb, reduction):
    super().__init__()
    self.rg = nn.Sequential(*[RCAB(c, reduction) for _ in range(nb)],
                            conv3(c, c))

  def forward(self, x):
    return self.rg(x) + x


class LiteISPNetTorch(nn.Module):
  def __init__(self, ch=(64, 128, 128), nb=4, reduction=16):
    super().__init__()
    c1, c2, c3 = ch
    rg = lambda c: RG(c, nb, reduction)  # noqa: E731
    self.head = conv3(4, c1)
    self.down1 = nn.Sequential(conv3(c1 + 2, c1 + 2), rg(c1 + 2),
                               conv3(c1 + 2, c1), DWT(c1))
    self.down2 = nn.Sequential(conv3(4 * c1, c1), rg(c1), DWT(c1))
    self.down3 = nn.Sequential(conv3(4 * c1, c2), rg(c2), DWT(c2))
    self.middle = nn.Sequential(conv3(4 * c2, c3), rg(c3), rg(c3),
                                conv3(c3, 4 * c2))
    self.up3 = nn.Sequential(IWT(4 * c2), rg(c2), conv3(c2, 4 * c1))
    self.up2 = nn.Sequential(IWT(4 * c1), rg(c1), conv3(c1, 4 * c1))
    self.up1 = nn.Sequential(IWT(4 * c1), rg(c1), conv3(c1, c1))
    self.tail = nn.Sequential(conv3(c1, 4 * c1), nn.PixelShuffle(2),
                              conv3(c1, 3))

  def forward(self, raw, coord):
    h = self.head(torch.pow(raw, 1 / 2.2))
    d1 = self.down1(torch.cat((h, coord), 1))
    d2 = self.down2(d1)
    d3 = self.down3(d2)
    m = self.middle(d3) + d3
    u3 = self.up3(m) + d2
    u2 = self.up2(u3) + d1
    u1 = self.up1(u2) + h
    return self.tail(u1)


class GCMTorch(nn.Module):
  def __init__(self, ch1=32, ch2=64):
    super().__init__()
    self.guide_net = nn.Sequential(
        nn.Sequential(nn.Conv2d(8, ch1, 7, stride=2, padding=0), nn.ReLU()),
        nn.Sequential(nn.Conv2d(ch1, ch1, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(ch1, ch1, 3, padding=1)),
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(ch1, ch2, 1))
    self.align_head = nn.Sequential(nn.Conv2d(5, ch2, 1), nn.ReLU())
    self.align_base = nn.Sequential(
        nn.Conv2d(ch2, ch2, 1), nn.ReLU(), nn.Conv2d(ch2, ch2, 1), nn.ReLU(),
        nn.Conv2d(ch2, ch2, 1), nn.ReLU())
    self.align_tail = nn.Conv2d(ch2, 3, 1)

  def forward(self, demosaic, dslr, coord):
    x = torch.pow(demosaic, 1 / 2.2)
    guide = self.guide_net(torch.cat((x, dslr, coord), 1))
    out = self.align_head(torch.cat((x, coord), 1))
    out = guide * out + out
    return self.align_tail(self.align_base(out)) + x
