"""A small chart drawer on PIL: line charts and dot charts for the figures.

rawjax's figures (training curves, results charts) need axes with ticks,
axis labels, a title, a legend, lines with markers and dots with error
whiskers, and a log y axis. matplotlib would draw them, but it is not a
dependency of rawjax (pillow is), and these few primitives are all the
figures use. Images are RGB `PIL.Image.Image`s, white background; a chart
comes back with its `Axes`, the data -> pixel map, so callers and tests
can locate what was drawn.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from rawjax.eval import images as eval_images

__all__ = [
    'Axes', 'Chart', 'PALETTE', 'Series', 'dot_chart', 'line_chart',
    'log_ticks', 'nice_ticks', 'tile',
]

# matplotlib's tab10, then the lighter tab20 partners: lines stay apart
# for up to 20 series (more cycle).
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
    (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
    (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229))
_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)
_GRID = (230, 230, 230)
_FONT_SIZE = eval_images.FONT_SIZE
_LINE = _FONT_SIZE + 4          # height of one text line
_MARKER_RADIUS = 2
_MAX_MARKED_POINTS = 30         # denser series are drawn as lines only


def _text_width(text: str, font) -> float:
  return ImageDraw.Draw(Image.new('L', (1, 1))).textlength(text, font=font)


def _fit(text: str, width: float, font) -> str:
  return eval_images.fit_text(ImageDraw.Draw(Image.new('L', (1, 1))), text,
                              width, font)


def _label(value: float) -> str:
  return f'{value:.4g}'


@dataclasses.dataclass(frozen=True)
class Series:
  """One line of a line chart: points (x[i], y[i]); non-finite y break it."""
  label: str
  x: Sequence[float]
  y: Sequence[float]


@dataclasses.dataclass(frozen=True)
class Axes:
  """The map from data coordinates to pixels of a plot box.

  box: (left, top, right, bottom) pixels of the plot area; xlim, ylim:
  the data ranges at its edges (y grows upwards); log_y: y is mapped by
  log10 (ylim must then be positive).
  """
  box: tuple[int, int, int, int]
  xlim: tuple[float, float]
  ylim: tuple[float, float]
  log_y: bool = False

  def _y(self, y: float) -> float:
    return math.log10(y) if self.log_y else y

  def px(self, x: float, y: float) -> tuple[float, float]:
    """Pixel (column, row) of the data point (x, y)."""
    left, top, right, bottom = self.box
    x0, x1 = self.xlim
    y0, y1 = self._y(self.ylim[0]), self._y(self.ylim[1])
    u = (x - x0) / (x1 - x0) if x1 != x0 else 0.5
    v = (self._y(y) - y0) / (y1 - y0) if y1 != y0 else 0.5
    return left + u * (right - left), bottom - v * (bottom - top)


@dataclasses.dataclass(frozen=True)
class Chart:
  """A drawn chart and the data -> pixel map of its plot area."""
  image: Image.Image
  axes: Axes


def nice_ticks(lo: float, hi: float, *, count: int = 5) -> np.ndarray:
  """About `count` round ticks (steps 1, 2, 2.5 or 5 x 10^k) in [lo, hi]."""
  if not (math.isfinite(lo) and math.isfinite(hi)):
    raise ValueError(f'tick range must be finite, got [{lo}, {hi}].')
  if hi < lo:
    lo, hi = hi, lo
  if hi == lo:
    return np.array([lo])
  raw = (hi - lo) / max(count - 1, 1)
  magnitude = 10.0 ** math.floor(math.log10(raw))
  step = next(m * magnitude for m in (1, 2, 2.5, 5, 10)
              if m * magnitude >= raw)
  first = math.ceil(lo / step - 1e-9) * step
  ticks = np.arange(first, hi + step * 1e-9, step)
  return np.round(ticks / step) * step  # no 0.30000000000000004


def log_ticks(lo: float, hi: float) -> np.ndarray:
  """Powers of ten in [lo, hi] (lo > 0); 1-2-5 steps when fewer than 3."""
  if not (lo > 0 and hi >= lo):
    raise ValueError(f'log ticks need 0 < lo <= hi, got [{lo}, {hi}].')
  decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
  for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5, 7)):
    ticks = np.array([m * 10.0 ** d for d in decades for m in mantissas])
    ticks = ticks[(ticks >= lo * (1 - 1e-9)) & (ticks <= hi * (1 + 1e-9))]
    if len(ticks) >= 3:
      return ticks
  return ticks


def _padded(lo: float, hi: float, *, log: bool) -> tuple[float, float]:
  """A data range with 8 % room on both sides (in log10 for log axes),
  so that markers at the extremes stay clear of the frame."""
  if log:
    a, b = _padded(math.log10(lo), math.log10(hi), log=False)
    return 10.0 ** a, 10.0 ** b
  if hi == lo:
    pad = abs(lo) * 0.05 or 0.5
  else:
    pad = (hi - lo) * 0.08
  return lo - pad, hi + pad


def _vertical_text(canvas: Image.Image, text: str, center: tuple[int, int],
                   font) -> None:
  """`text` rotated 90 degrees (reading upwards), centred at `center`."""
  width = int(_text_width(text, font)) + 2
  strip = Image.new('RGB', (width, _LINE), _BACKGROUND)
  ImageDraw.Draw(strip).text((1, 1), text, fill=_INK, font=font)
  strip = strip.rotate(90, expand=True)
  canvas.paste(strip, (center[0] - strip.width // 2,
                       center[1] - strip.height // 2))


def _frame(draw: ImageDraw.ImageDraw, axes: Axes, *, xticks, yticks,
           font, xgrid: bool) -> None:
  """Grid lines, the box, ticks and tick labels of `axes`."""
  left, top, right, bottom = axes.box
  for y in yticks:
    _, row = axes.px(axes.xlim[0], y)
    draw.line([(left, row), (right, row)], fill=_GRID)
    draw.line([(left - 4, row), (left, row)], fill=_INK)
    text = _label(y)
    draw.text((left - 6 - _text_width(text, font), row - _FONT_SIZE / 2 - 1),
              text, fill=_INK, font=font)
  for x in xticks:
    column, _ = axes.px(x, axes.ylim[0])
    if xgrid:
      draw.line([(column, top), (column, bottom)], fill=_GRID)
    draw.line([(column, bottom), (column, bottom + 4)], fill=_INK)
    text = _label(x)
    draw.text((column - _text_width(text, font) / 2, bottom + 5), text,
              fill=_INK, font=font)
  draw.rectangle([left, top, right, bottom], outline=_INK)


def _title(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> None:
  text = _fit(text, width - 8, font)
  draw.text(((width - _text_width(text, font)) / 2, 3), text, fill=_INK,
            font=font)


def line_chart(series: Sequence[Series], *, size: tuple[int, int] = (480, 300),
               title: str = '', xlabel: str = '', ylabel: str = '',
               log_y: bool = False,
               xlim: tuple[float, float] | None = None,
               ylim: tuple[float, float] | None = None) -> Chart:
  """Lines of `series` (markers where a series has few points), a legend.

  Args:
    series: the lines; colours from `PALETTE` in order. Points with a
      non-finite y (or y <= 0 on a log axis) are left out and break the
      line.
    size: (width, height) of the image in pixels.
    title, xlabel, ylabel: text above the plot and along the axes.
    log_y: a log10 y axis.
    xlim, ylim: data ranges of the plot area; default the data's, padded
      by 8 %.

  Returns:
    The chart; its legend sits right of the plot area.

  Raises:
    ValueError: no series has a point to draw, or an x and y differ in
      length.
  """
  font = eval_images.text_font()
  width, height = size
  points = []
  for s in series:
    x, y = np.asarray(s.x, np.float64), np.asarray(s.y, np.float64)
    if x.shape != y.shape:
      raise ValueError(f'series {s.label!r}: {x.size} x values for {y.size} '
                       'y values.')
    keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
    points.append((x, y, keep))
  if not any(keep.any() for _, _, keep in points):
    raise ValueError(f'line chart {title!r}: no finite point to draw.')
  xs = np.concatenate([x[k] for x, _, k in points])
  ys = np.concatenate([y[k] for _, y, k in points])
  if xlim is None:
    xlim = (float(xs.min()), float(xs.max()))
    if xlim[0] == xlim[1]:
      xlim = _padded(*xlim, log=False)
  if ylim is None:
    ylim = _padded(float(ys.min()), float(ys.max()), log=log_y)
  legend_width = 0
  if series:
    legend_width = min(int(max(_text_width(s.label, font) for s in series))
                       + 26, width // 3)
  tick_width = max(_text_width(_label(t), font) for t in (
      log_ticks(*ylim) if log_y else nice_ticks(*ylim)))
  box = (int(tick_width) + 10 + (_LINE if ylabel else 0), _LINE + 6,
         width - legend_width - 10, height - 2 * _LINE - 8)
  axes = Axes(box, xlim, ylim, log_y=log_y)
  canvas = Image.new('RGB', size, _BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  _frame(draw, axes, xticks=nice_ticks(*xlim),
         yticks=log_ticks(*ylim) if log_y else nice_ticks(*ylim), font=font,
         xgrid=True)
  left, top, right, bottom = box
  for i, (x, y, keep) in enumerate(points):
    color = PALETTE[i % len(PALETTE)]
    segments = [[]]
    for xi, yi, ok in zip(x, y, keep):
      if ok:
        segments[-1].append(axes.px(xi, yi))
      elif segments[-1]:
        segments.append([])
    for segment in segments:
      if len(segment) > 1:
        draw.line(segment, fill=color, width=2)
    if keep.sum() <= _MAX_MARKED_POINTS:
      r = _MARKER_RADIUS
      for xi, yi in zip(x[keep], y[keep]):
        u, v = axes.px(xi, yi)
        draw.ellipse([u - r, v - r, u + r, v + r], fill=color)
  for i, s in enumerate(series):
    row = top + 4 + i * _LINE
    if row + _LINE > bottom:
      draw.text((right + 8, row), f'(+{len(series) - i} more)', fill=_INK,
                font=font)
      break
    color = PALETTE[i % len(PALETTE)]
    draw.line([(right + 8, row + _LINE / 2), (right + 20, row + _LINE / 2)],
              fill=color, width=3)
    draw.text((right + 24, row), _fit(s.label, legend_width - 26, font),
              fill=_INK, font=font)
  _title(draw, title, width, font)
  if xlabel:
    draw.text(((left + right - _text_width(xlabel, font)) / 2,
               height - _LINE - 2), xlabel, fill=_INK, font=font)
  if ylabel:
    _vertical_text(canvas, ylabel, (_LINE // 2 + 2, (top + bottom) // 2),
                   font)
  return Chart(canvas, axes)


def dot_chart(labels: Sequence[str], values: Sequence[float], *,
              errors: Sequence[float | None] | None = None,
              width: int = 360, title: str = '', xlabel: str = '') -> Chart:
  """A horizontal dot chart: a row per label, a dot at its value.

  Each row has its label on the left, a dot at the value with a whisker
  of +- its error (when given and finite) and the value printed on the
  right. The x range is the data's (with whiskers), padded by 8 %: the
  axis does not start at 0, so close scores (PSNRs 20 dB apart from 0)
  stay apart, which a bar chart from 0 would hide. Rows with a non-finite
  value show 'n/a' and no dot. The height follows the number of rows.

  Returns:
    The chart; row i is at data y = i (row 0 on top, `Axes.ylim` runs
    from len(labels) - 0.5 down to -0.5).

  Raises:
    ValueError: no label, lengths that differ, or no finite value.
  """
  if not labels:
    raise ValueError(f'dot chart {title!r}: no rows.')
  values = np.asarray(values, np.float64)
  errors = np.asarray([np.nan if e is None else e for e in errors]
                      if errors is not None else np.full(len(labels), np.nan),
                      np.float64)
  if not len(labels) == len(values) == len(errors):
    raise ValueError(f'dot chart {title!r}: {len(labels)} labels, '
                     f'{len(values)} values, {len(errors)} errors.')
  finite = np.isfinite(values)
  if not finite.any():
    raise ValueError(f'dot chart {title!r}: no finite value.')
  spread = np.where(np.isfinite(errors), np.abs(errors), 0.0)
  xlim = _padded(float((values - spread)[finite].min()),
                 float((values + spread)[finite].max()), log=False)
  font = eval_images.text_font()
  texts = ['n/a' if not ok else (_label(v) if not e else
                                 f'{_label(v)} \u00b1 {_label(e)}')
           for v, e, ok in zip(values, spread, finite)]
  label_width = min(max(_text_width(str(t), font) for t in labels),
                    width * 0.4)
  value_width = max(_text_width(t, font) for t in texts)
  row_height = _LINE + 3
  height = _LINE + 6 + len(labels) * row_height + 2 * _LINE + 8
  box = (int(label_width) + 10, _LINE + 6, width - int(value_width) - 10,
         _LINE + 6 + len(labels) * row_height)
  axes = Axes(box, xlim, (len(labels) - 0.5, -0.5))
  canvas = Image.new('RGB', (width, height), _BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  _frame(draw, axes, xticks=nice_ticks(*xlim, count=4), yticks=(), font=font,
         xgrid=True)
  left, _, right, _ = box
  color = PALETTE[0]
  for i, (label, value, error, text) in enumerate(
      zip(labels, values, spread, texts)):
    _, row = axes.px(xlim[0], i)
    draw.line([(left, row), (right, row)], fill=_GRID)
    name = _fit(str(label), label_width, font)
    draw.text((left - 6 - _text_width(name, font), row - _FONT_SIZE / 2 - 1),
              name, fill=_INK, font=font)
    draw.text((right + 6, row - _FONT_SIZE / 2 - 1), text, fill=_INK,
              font=font)
    if not np.isfinite(value):
      continue
    u, v = axes.px(value, i)
    if error:
      a, _ = axes.px(value - error, i)
      b, _ = axes.px(value + error, i)
      draw.line([(a, v), (b, v)], fill=color, width=1)
      draw.line([(a, v - 3), (a, v + 3)], fill=color)
      draw.line([(b, v - 3), (b, v + 3)], fill=color)
    r = _MARKER_RADIUS + 1
    draw.ellipse([u - r, v - r, u + r, v + r], fill=color)
  _title(draw, title, width, font)
  if xlabel:
    draw.text(((left + right - _text_width(xlabel, font)) / 2,
               height - _LINE - 2), xlabel, fill=_INK, font=font)
  return Chart(canvas, axes)


def tile(images: Sequence[Image.Image], *, columns: int,
         title: str = '', padding: int = 4) -> Image.Image:
  """Images in rows of `columns`, top-aligned, with an optional title."""
  if not images:
    raise ValueError('tile needs at least one image.')
  columns = max(1, min(columns, len(images)))
  rows = [images[i:i + columns] for i in range(0, len(images), columns)]
  cell_w = max(im.width for im in images)
  heights = [max(im.height for im in row) for row in rows]
  top = _LINE + 6 if title else 0
  canvas = Image.new('RGB', (columns * (cell_w + padding) + padding,
                             top + sum(heights) + padding * (len(rows) + 1)),
                     _BACKGROUND)
  y = top + padding
  for row, h in zip(rows, heights):
    for c, im in enumerate(row):
      canvas.paste(im, (padding + c * (cell_w + padding), y))
    y += h + padding
  if title:
    _title(ImageDraw.Draw(canvas), title, canvas.width,
           eval_images.text_font())
  return canvas
