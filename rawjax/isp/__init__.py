"""Pure, differentiable ISP stages and their inverses (flat public API)."""

from rawjax.isp.cfa import (
    CHANNELS, PATTERNS, bayer_masks, channel_offsets, colour_index_to_channel,
    crop_mosaic, crop_pattern, flip_mosaic, flip_packed, flip_pattern,
    from_pynet_order, pack, pattern_from_rawpy, rot90_mosaic, rot90_packed,
    rot90_pattern, to_pynet_order, transpose_packed, unpack, validate_pattern)
from rawjax.isp.levels import apply_clip, denormalize, normalize
from rawjax.isp.metadata import RawMetadata
from rawjax.isp.shading import (
    GAIN_MAP_OPCODE_ID, GainMap, OpaqueOpcode, apply_shading, correct_shading,
    decode_opcode_list, encode_opcode_list, gain_from_gain_maps,
    gain_maps_from_falloff, radial_falloff)
from rawjax.isp.demosaic import demosaic_bilinear, demosaic_malvar, mosaic
from rawjax.isp.color import (
    D50_XY, D65_XY, SRGB_TO_XYZ, XYZ_TO_SRGB, apply_ccm, apply_matrix,
    bradford_adaptation, camera_to_srgb_from_xyz_to_camera, inverse_ccm,
    inverse_white_balance, lab_to_srgb, lab_to_xyz, linear_srgb_to_xyz,
    packed_to_rgb, srgb_decode, srgb_encode, srgb_to_lab, visualize_raw,
    white_balance, xyz_to_lab, xyz_to_linear_srgb)
from rawjax.isp.dng_color import (
    ILLUMINANT_TEMPERATURE, camera_to_srgb_dng, dng_camera_to_xyz_d50,
    xy_to_cct)
from rawjax.isp.pipeline import process, raw_to_linear_camera
from rawjax.isp.noise import (
    NoiseLevels, add_noise, add_random_noise, noise_variance,
    random_noise_levels, random_semiisp_noise_levels)
from rawjax.isp.unprocess import (
    UPI_XYZ_TO_CAMERAS, UPIGains, UPIMetadata, demosaic_upi, gamma_compression,
    gamma_expansion, inverse_smoothstep, random_ccm, random_gains,
    random_upi_metadata, safe_invert_gains, smoothstep, unprocess,
    unprocess_with_metadata, upi_process)
from rawjax.isp.polynomial import (
    KERNELS, apply_polynomial, fit_polynomial, kernel_table,
    polynomial_features, polynomial_num_terms)
from rawjax.isp import lut, pqdynamic
from rawjax.isp.lut import (
    UniformLUT, cached_inverse_lut, invert_monotone_family, lut_interpolate,
    lut_interpolate_curves, uniform_lut)
from rawjax.isp.pqdynamic import (
    CurveParams, ISPParams, InverseLUTs, MixtureParams, ParamRanges,
    color_correction, contrast_stretch, default_luts, gain_curve,
    gamma_tone_map, gamma_tone_map_lut, inverse_color_correction,
    inverse_contrast_stretch, inverse_gain_curve, inverse_gamma_tone_map,
    inverse_inverse_tone_map, inverse_tone_map, inverse_tone_map_lut,
    isp_forward, isp_inverse, params_from_unconstrained,
    unconstrained_from_params)
from rawjax.isp import camera_isp
from rawjax.isp.camera_isp import (
    STYLES, CameraStyle, ToneCurve, adjust_saturation_hue, apply_tone_curve,
    auto_exposure, exposure_gain, guided_filter, histogram_tone_curve,
    local_tone_map, render, sharpen, white_balance_shift)
from rawjax.isp.warp import (
    backward_warp, flow_magnitude, homography_flow, resize_flow,
    warp_homography)
