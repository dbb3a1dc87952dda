"""The model catalogue: every method rtstereo knows, registered by name.

Nothing here imports torch; each architecture module is imported when its model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .registry import DEFAULT_ALIAS, ModelSpec, get_spec, list_models, register

__all__ = [
    "ModelSpec",
    "get_spec",
    "list_models",
    "register",
    "DEFAULT_ALIAS",
    "PACKAGED_NETWORK",
    "GUIDED_NETWORK",
    "PACKAGED_SOURCES",
    "packaged_network_source",
    "resolve_alias",
    "is_onnx_file",
    "architecture_range_px",
]

# The network trained by this project that ships inside the package (registered below).
PACKAGED_NETWORK = "rtnet-v5"
# The hybrid's network: rtnet guided by SGBM's confident matches (training/guided/; SELECTION.md,
# session 12), also inside the package. Alone, without hints, it runs unguided.
GUIDED_NETWORK = "rtnet-guided"
# The PyTorch state each packaged ONNX network was exported from, in a source checkout.
PACKAGED_SOURCES = {"rtnet-v5": "training/default/state.pt", "rtnet-guided": "training/guided/state.pt"}


def packaged_network_source(name: str = "rtnet-v5") -> Path | None:
    """The PyTorch state the packaged ONNX network ``name`` was exported from (``training/default/state.pt``
    for ``rtnet-v5``), or ``None`` when rtstereo runs from an installed package without it."""
    candidate = Path(__file__).resolve().parents[3] / PACKAGED_SOURCES[name]
    return candidate if candidate.is_file() else None


# AnyNet's range is its architecture's, not a setting (its setting_help below): the pixels each stage reaches at full
# size (12 levels at 1/16, then +-2 levels at 1/8 and 1/4; stage 4 refines stage 3's map).
ANYNET_RANGE_PX = {1: 176, 2: 192, 3: 200, 4: 200}


def architecture_range_px(settings: Mapping[str, Any]) -> int | None:
    """The disparity range, pixels, of a network whose settings do not hold one because its architecture fixes it:
    AnyNet's by its ``stage`` (the one model with that setting, a registry row's or an export's); ``None`` otherwise.

    Examples:
        >>> architecture_range_px({"stage": 3}), architecture_range_px({"stage": 1}), architecture_range_px({})
        (200, 176, None)
    """
    if "max_disp" in settings:
        return None
    try:
        return ANYNET_RANGE_PX.get(int(settings["stage"]))
    except (KeyError, TypeError, ValueError):
        return None


def is_onnx_file(model: str) -> bool:
    """Whether a model argument names an exported ``.onnx`` file rather than a registry entry."""
    return model.lower().endswith(".onnx")


def resolve_alias(name: str) -> str:
    """Map ``default`` (and ``None``) to the model it currently stands for, and a model's name in other letters to
    its own (``SGBM``: ``sgbm``), as ``--pattern`` and ``--format`` ignore case.

    Examples:
        >>> resolve_alias("SGBM"), resolve_alias("RTNet-V5"), resolve_alias("Default") == DEFAULT_ALIAS
        ('sgbm', 'rtnet-v5', True)
    """
    if name in (None, "") or (isinstance(name, str) and name.lower() == "default"):
        return DEFAULT_ALIAS
    if isinstance(name, str) and name.lower() != name and name.lower() in list_models():  # names are lower case
        return name.lower()
    return name


_SGBM_HELP = {
    "max_disp": "largest disparity searched, pixels (rounded up to a multiple of 16)",
    "block_size": "matching block size, pixels (odd)",
    "fill_holes": "fill invalid pixels along each row with the smaller nearest valid neighbour",
    "uniqueness": "uniqueness ratio, percent",
    "speckle_window": "largest speckle region removed, pixels (0 = off)",
    "speckle_range": "largest disparity difference between neighbours of one speckle region, whole pixels",
    "disp12_max_diff": "left-right check tolerance, pixels (-1 = off)",
}
# OpenCV's StereoSGBM always runs its left-right check: a disp12MaxDiff of 0 or less acts as 1
# (measured: -1, 0 and 1 give the same maps), unlike StereoBM, where -1 turns it off.
_SGBM_ONLY_HELP = {
    "disp12_max_diff": "left-right check tolerance, whole pixels (always on in SGBM: 0 and -1 act as 1)",
    "uniqueness": "uniqueness ratio, percent (0 to 99)",
    "block_size": "matching block size, pixels (odd, 1 to 11)",
}

# StereoBM takes blocks of 5 to 255 pixels only (rtstereo.models.sgbm.build_bm refuses the others). Its speckle
# filter compares the fixed-point disparities (16 per pixel) with speckleRange as given, where SGBM's multiplies
# it by 16 first: the same number is 16 times finer in bm (the default 2 is 1/8 px).
_BM_ONLY_HELP = {
    "block_size": "matching block size, pixels (odd, 5 to 255)",
    "speckle_range": "largest disparity difference between neighbours of one speckle region, in 1/16 px (16 = 1 "
    "px; sgbm's is in pixels)",
}


def _opencv_matcher(name: str, summary: str, builder: str, block_size: int) -> ModelSpec:
    """SGBM and BM: the same settings (``_SGBM_HELP``), different matchers and block sizes."""
    help_texts = {**_SGBM_HELP, **(_SGBM_ONLY_HELP if name == "sgbm" else _BM_ONLY_HELP)}
    return ModelSpec(
        name=name,
        summary=summary,
        kind="classical",
        builder=builder,
        defaults={
            "max_disp": 192,
            "block_size": block_size,
            "fill_holes": True,
            "uniqueness": 10,
            "speckle_window": 100,
            "speckle_range": 2,
            "disp12_max_diff": 1,
        },
        setting_help=help_texts,
        licence="Apache-2.0 (OpenCV)",
        weights_source="none needed",
    )


def _gwcnet(name: str, summary: str, builder: str) -> ModelSpec:
    """The two GwcNet variants: same settings and checkpoints, different cost volumes."""
    return ModelSpec(
        name=name,
        summary=summary,
        kind="network",
        builder=builder,
        defaults={"max_disp": 192},
        setting_help={"max_disp": "disparity range of the cost volume, pixels (multiple of 16)"},
        normalization="imagenet",
        size_divisor=16,
        checkpoint_loader="rtstereo.models.gwcnet:load_gwcnet_checkpoint",
        needs_weights=True,
        licence="MIT (xy-guo/GwcNet)",
        weights_source="the SceneFlow / KITTI checkpoints released by xy-guo/GwcNet ({'model': ...})",
    )


register(
    _opencv_matcher(
        "sgbm",
        "OpenCV semi-global block matching (classical, no weights, CPU)",
        "rtstereo.models.sgbm:build_sgbm",
        block_size=5,
    )
)
register(
    _opencv_matcher(
        "bm",
        "OpenCV block matching on grey images (classical, fastest, least accurate)",
        "rtstereo.models.sgbm:build_bm",
        block_size=15,
    )
)
register(
    _gwcnet(
        "gwcnet-g",
        "GwcNet-g: group-wise correlation volume + 3D hourglasses (Guo et al., CVPR 2019)",
        "rtstereo.models.gwcnet:build_gwcnet_g",
    )
)
register(
    _gwcnet(
        "gwcnet-gc",
        "GwcNet-gc: group-wise correlation + concatenation volume (Guo et al., CVPR 2019)",
        "rtstereo.models.gwcnet:build_gwcnet_gc",
    )
)

register(
    ModelSpec(
        name="crestereo",
        summary="CREStereo: cascaded recurrent refinement with adaptive correlation (Li et al., CVPR 2022)",
        kind="network",
        builder="rtstereo.models.crestereo:build_crestereo",
        defaults={"iters": 20, "two_pass": False},
        setting_help={
            "iters": "refinement iterations, 2 or more (the public ONNX models: 2, 5, 10 or 20)",
            "two_pass": "run a half-size pass first and use it to initialise the full-size pass",
        },
        normalization="raw255",
        channel_order="bgr",  # megvii's test.py and training reader feed cv2.imread's images unconverted
        size_divisor=32,
        min_size_px=64,  # two_pass's half-size pass interpolates at 1/16 of its input: 2 pixels there
        checkpoint_loader="rtstereo.models.crestereo:load_crestereo_checkpoint",
        needs_weights=True,
        licence="Apache-2.0 (megvii-research/CREStereo)",
        weights_source="crestereo_eth3d.pth, the PyTorch conversion of the MegEngine release",
    )
)

register(
    ModelSpec(
        name="anynet",
        summary="AnyNet: anytime coarse-to-fine stereo, stages 1-3 and SPN (Wang et al., ICRA 2019)",
        kind="network",
        builder="rtstereo.models.anynet:build_anynet",
        defaults={"stage": 3},
        # Its range is the published architecture's (12 levels at 1/16, then +-2 levels at 1/8 and 1/4), not a setting:
        # rtstereo models anynet said none, and --max-disp is refused.
        setting_help={
            "stage": "output stage: 1, 2, 3 (coarse to fine) or 4 (stage 3 + SPN refinement); the range is fixed by "
            "the architecture: "
            + ", ".join(
                f"stage {stage}{' reaches' if stage == 1 else ''} {ANYNET_RANGE_PX[stage]} px" for stage in (1, 2, 3)
            )
            + " (stage 4 refines its map)"
        },
        normalization="imagenet",
        size_divisor=16,
        checkpoint_loader="rtstereo.models.anynet:load_anynet_checkpoint",
        needs_weights=True,
        licence="MIT (mileyan/AnyNet)",
        weights_source="the SceneFlow / KITTI 2012 / KITTI 2015 checkpoints of mileyan/AnyNet",
    )
)

register(
    ModelSpec(
        name="rtnet",
        summary="rtstereo's own real-time network: 2D convolutions and correlation, built for CPUs",
        kind="network",
        builder="rtstereo.models.rtnet:build_rtnet",
        defaults={"max_disp": 192, "half_refinement": False, "full_refinement": False, "guided": False},
        setting_help={
            "max_disp": "largest disparity searched, pixels (multiple of 32)",
            "half_refinement": "add the 1/2-resolution sub-pixel refinement stage",
            "full_refinement": "add the full-resolution sub-pixel refinement stage",
            "guided": "take SGBM's confident matches as a third input (the hybrid method gives them)",
        },
        normalization="imagenet",
        size_divisor=32,
        checkpoint_loader="rtstereo.models.rtnet:load_rtnet_checkpoint",
        needs_weights=True,
        licence="MIT (this project)",
        weights_source="trained by this project (`rtstereo train`)",
        fill_left_border=True,
        refine_edges=True,
        weight_settings=("max_disp", "half_refinement", "full_refinement", "guided"),
    )
)


# The packaged network: rtnet trained by this project (`training/default/`), exported with
# `rtstereo export ... --dynamic` (any size that is a multiple of 32); it runs in ONNX Runtime
# without torch. Its int8 copy (`--int8`) is not shipped (README, "Which model is `default`?").
def packaged_rtnet(name: str, summary: str, record: str) -> ModelSpec:
    """The registry entry of an rtnet this project trained and ships as a dynamic-size ONNX file
    (``weights/NAME.onnx``), with its training record in ``record``."""
    return ModelSpec(
        name=name,
        summary=summary,
        onnx_file=f"{name}.onnx",
        kind="onnx",
        builder="",
        defaults={"max_disp": 192},
        setting_help={"max_disp": "largest disparity searched, pixels (fixed in the file: 192)"},
        normalization="imagenet",
        size_divisor=32,
        licence="MIT (this project)",
        weights_source=f"inside the package (trained by this project, {record})",
        fill_left_border=True,
        refine_edges=True,
    )


register(
    packaged_rtnet(
        PACKAGED_NETWORK,
        "rtnet with its 1/2- and full-resolution stages as trained by this project, packaged ONNX fp32: no "
        "download, no torch; edges refined against the images; beats SGBM on KITTI and ETH3D, not on most Middlebury "
        "scenes",
        "training/default/",
    )
)

# The guided network, the hybrid's: SGBM's confident matches are its third input (the hybrid gives
# them; `rtstereo.models.rtnet.Guidance`), exported with them as a fourth channel of `left`.
register(
    packaged_rtnet(
        GUIDED_NETWORK,
        f"rtnet guided by SGBM's confident matches (the hybrid's network), trained by this project from "
        f"{PACKAGED_NETWORK}, packaged ONNX fp32; alone, without hints, it runs unguided (use {PACKAGED_NETWORK})",
        "training/guided/",
    )
)

# The guided network with SGBM's confident matches in place of its own (rtstereo.runtime.hybrid).
register(
    ModelSpec(
        name="hybrid",
        summary=f"SGBM where its uniqueness test and left-right check hold (unless a small learned check prefers "
        f"the network there); elsewhere {GUIDED_NETWORK} (given SGBM's confident matches) or SGBM's row-wise fill, "
        "as a small learned selector chooses (no torch, no download)",
        kind="hybrid",
        builder="",
        network=GUIDED_NETWORK,
        defaults={
            "max_disp": 192,
            "uniqueness": 10,
            "lr_tolerance": 1.0,
            "mirrored_check": False,
            "three_way": True,
            "hole_choice": True,
            "choose_by": "learned",
            "check_confident": True,
            "median": 0,
            "sgbm_input": "auto",
            "network": GUIDED_NETWORK,
        },
        setting_help={
            "max_disp": "largest disparity SGBM searches, pixels (at most a quarter of the image width; the "
            "network's range is fixed: 192)",
            "uniqueness": "SGBM's uniqueness ratio for a confident match, percent (0 to 99)",
            "lr_tolerance": "left-right check tolerance for a confident match, whole pixels (OpenCV's "
            "disp12MaxDiff: 0 acts as 1; 2.5 is refused, not rounded); with mirrored_check=true any number >= 0, "
            "which its second pass checks exactly",
            "mirrored_check": "also check each match against a second SGBM pass on the mirrored pair (stricter, "
            "twice SGBM's time)",
            "three_way": "SGBM in OpenCV's 3-direction mode (MODE_SGBM_3WAY): parallel on every thread, about 2.5x "
            "faster than its 5-direction mode (false), slightly different matches",
            "network": "the network it runs: a packaged network (rtnet-v5, rtnet-guided), an exported .onnx file or an "
            "rtstereo checkpoint (e.g. one written by `rtstereo adapt`); a network that needs --weights goes in "
            "exported with them",
            "hole_choice": "where SGBM is not confident, take the network's value or SGBM's row-wise fill, as "
            "choose_by says (false: always the network's)",
            "choose_by": "how hole_choice chooses: 'learned' (a small perceptron fit on rendered scenes, "
            "rtstereo.runtime.hole_choice) or 'cost' (the lower photometric cost over a 9 px square)",
            "check_confident": "where the network differs by more than 1 px from a confident SGBM match, take the "
            "network's value if a second small perceptron fit on rendered scenes is fairly sure it is the right one "
            "(rtstereo.runtime.confident_check)",
            "sgbm_input": "what SGBM matches: 'raw' (the images as they are), 'normalized' (each view with its "
            "local mean removed and divided by its local contrast over 7 px: robust to cameras that expose "
            "differently, rtstereo.models.sgbm.normalize_local_contrast) or 'auto' (normalized when the right "
            "view's mean brightness is beyond 1.2x the left one's, either way; raw otherwise)",
            "median": "size of a median filter over the final map, pixels: 0 (off), 3 or 5 (pixels next to an "
            "invalid one are kept)",
        },
        size_divisor=32,
        licence="MIT (this project) + Apache-2.0 (OpenCV)",
        weights_source="inside the package (the packaged network)",
    )
)
