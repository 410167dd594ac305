"""File I/O: camera raw reading (rawpy + tifffile) and PNG/TIFF images."""

from rawjax.io.dng import write_dng
from rawjax.io.image import read_image, write_image
from rawjax.io.staging import datasets_cache, staged_directory
from rawjax.io.raw import (
    DngTags, RawImage, RawReadError,
    camera_to_srgb_from_xyz_to_camera, read_raw)

__all__ = [
    'DngTags', 'RawImage', 'RawReadError',
    'camera_to_srgb_from_xyz_to_camera', 'read_image', 'read_raw',
    'datasets_cache', 'staged_directory', 'write_dng', 'write_image',
]
