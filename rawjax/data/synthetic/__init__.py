"""A physically based two-camera raw simulator: the embedded default data.

Every scene is a field of measured reflectance spectra lit by measured
illuminant spectra and seen through the measured spectral sensitivities of
real cameras (eq. 1 of the semi-supervised raw-to-raw paper):

    raw_c(x) = k * sum_lambda E(x, lambda) R(x, lambda) S_c(lambda)

(400-700 nm at 10 nm), then CFA sampling, heteroscedastic shot + read noise,
black level, quantisation and clipping. The same scene rendered through two
cameras gives pixel-aligned raw-to-raw pairs, which no captured dataset has.

Reflectances are convex (barycentric) mixtures of measured spectra from
colour-science (ColorChecker N Ohta, PMC memory colours, CIE 1995 test
colours, NIST CQS samples, black), never a 3-D linear basis (with which the
cross-camera map would be exactly a 3x3 matrix):
  * 'natural' scenes take a crop of a scikit-image photograph and give each
    pixel the mixture of the four library spectra at the corners of the
    Delaunay tetrahedron (in D65 linear sRGB) that contains its colour, with
    the barycentric weights: under D65 the scene looks like the photograph;
  * 'dead_leaves' scenes stack occluding discs and rectangles with power-law
    radii (the dead-leaves model of natural image statistics), each a mixture
    of three library spectra and black whose weights vary over the leaf with
    a gradient or a texture (scikit-image's brick/grass/gravel or fractal
    noise).
A ColorChecker (the 24 Ohta spectra in a black frame) is placed in a fraction
of the scenes, with the patch boxes returned for chart-based calibration.

Illumination is one illuminant, or two or three blended by smooth spatial
maps (point lights at random positions and heights over a Lambertian floor,
plus ambient: the LSMI multi-illuminant setting). Illuminants: the CIE D
series over a CCT range, Planckian radiators (tungsten, A), CIE FL1-FL12 and
the CIE LED illuminants.

Each capture has its camera's CFA phase, black and white level; its
metadata holds the as-shot white balance (the camera's response to white
under the image-mean illuminant) and an XYZ -> camera matrix fitted from the
sensitivities (white-preserving least squares over the reflectance library
under D65). Its sRGB rendering uses the colour stages of the reference
pipeline (`rawjax.isp.process` without demosaicing) on the clean camera RGB.

Generation is deterministic from (seed, scene index): each scene draws from
its own numpy Generator and JAX key, so a scene does not depend on the
number of scenes, their order, or which cameras render it.

    python -m rawjax.data.synthetic --out DIR --preset raw2raw --num 300

writes the Afifi & Abuolaim raw2raw layout (see `write_dataset`).

The second-generation presets (`raw2raw_v2`, `multi_illum_v2`,
`raw2srgb_v2`) use cameras of a measured-sensitivity registry (`cameras`:
a folder of CSVs, $RAWJAX_SSF_DIR or ../shared/data/ssf), per-camera lens and
colour shading recorded in the raw and in the DNG's GainMap opcodes, the
photograph catalogue of `rawjax.data.sources` with a labelled/unlabelled
content split, fractal scenes, and the camera-like ISP of
`rawjax.isp.camera_isp` for sRGB targets (docs/data.md).

Modules: `cameras` (profiles, registry, raw formats, shading parameters),
`illuminants`, `reflectance`, `content`, `presets` (`SceneConfig`,
`PRESETS`), `render` (`generate_scene`), `writer` (`write_dataset`,
`sample_grid`), `cli` (the command).
"""

from __future__ import annotations

from rawjax.data.synthetic.cameras import (
    DEFAULT_CAMERAS, KINDS, NIKON_5100, RAW_FORMATS, SIGMA_SDMERRILL, SSF_ENV,
    CameraProfile, LensShading, camera_from_file, camera_profile,
    default_ssf_dir, fit_xyz_to_camera, load_cameras, resolve_cameras)
from rawjax.data.synthetic.cli import main
from rawjax.data.synthetic.content import (
    NATURAL_IMAGES, TEXTURE_IMAGES, catalogue_names)
from rawjax.data.synthetic.presets import PRESETS, SceneConfig
from rawjax.data.synthetic.render import (
    Capture, Scene, generate_scene, generate_scenes, scene_cameras)
from rawjax.data.synthetic.writer import sample_grid, write_dataset

__all__ = [
    'CameraProfile', 'Capture', 'DEFAULT_CAMERAS', 'LensShading', 'PRESETS',
    'RAW_FORMATS', 'SSF_ENV', 'Scene', 'SceneConfig', 'camera_from_file',
    'camera_profile', 'catalogue_names', 'default_ssf_dir',
    'fit_xyz_to_camera', 'generate_scene', 'generate_scenes', 'load_cameras',
    'main', 'resolve_cameras', 'sample_grid', 'scene_cameras', 'write_dataset'
]
