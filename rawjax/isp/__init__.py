"""Pure, differentiable ISP stages and their inverses (flat public API)."""

from rawjax.isp.cfa import (
    CHANNELS, PATTERNS, bayer_masks, channel_offsets, colour_index_to_channel,
    crop_mosaic, crop_pattern, flip_mosaic, flip_packed, flip_pattern,
    from_pynet_order, pack, pattern_from_rawpy, rot90_mosaic, rot90_packed,
    rot90_pattern, to_pynet_order, transpose_packed, unpack, validate_pattern)
from rawjax.isp.levels import apply_clip, denormalize, normalize
from rawjax.isp.metadata import RawMetadata
