"""File I/O: camera raw reading (rawpy + tifffile) and PNG/TIFF images."""

from rawjax.io.image import read_image, write_image
from rawjax.io.raw import (
    SRGB_TO_XYZ, DngTags, RawImage, RawReadError,
    camera_to_srgb_from_xyz_to_camera, read_raw)

__all__ = [
    'SRGB_TO_XYZ', 'DngTags', 'RawImage', 'RawReadError',
    'camera_to_srgb_from_xyz_to_camera', 'read_image', 'read_raw',
    'write_image',
]
