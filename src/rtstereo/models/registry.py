"""The one registry that resolves a model name to its :class:`ModelSpec`.

Builders and checkpoint loaders are named as ``"module:function"`` strings and imported only when a
model is built, so that the registry (and the ONNX Runtime / OpenCV inference path) never imports
torch.

Contract for a network builder (``kind == "network"``): ``build(settings: dict) -> torch.nn.Module``
whose ``forward(left, right)`` takes ``(N, 3, H, W)`` float32 tensors normalised as the spec says,
with ``H`` and ``W`` multiples of ``size_divisor``, and in eval mode returns the disparity
``(N, H, W)`` in pixels (positive). A checkpoint loader is ``load(module, path) -> dict`` (metadata
about the file) and raises :class:`~rtstereo.errors.CheckpointError` for a wrong or damaged file.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from ..errors import InputError, ModelNotFoundError
from ..text import shortened

Normalization = Literal["imagenet", "raw255", "unit", "none"]
ChannelOrder = Literal["rgb", "bgr"]
Kind = Literal["classical", "network", "onnx", "hybrid"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, feed and load one model.

    Attributes:
        name: registry name, e.g. ``"gwcnet-gc"``.
        summary: one line for ``rtstereo models``.
        kind: ``classical`` (OpenCV), ``network`` (PyTorch architecture), ``onnx`` (a shipped
            ONNX file) or ``hybrid`` (a registered network fused with SGBM's confident matches,
            :mod:`rtstereo.runtime.hybrid`).
        builder: ``"module:function"`` that builds the method from its settings.
        defaults: every setting the model accepts, with its default value (the type of the default
            decides how ``--set key=value`` strings are parsed).
        setting_help: one line per setting.
        normalization: how uint8 RGB is turned into the network input: ``imagenet`` (0..1 then
            ImageNet mean/std), ``raw255`` (float 0..255), ``unit`` (0..1), ``none`` (uint8 as is).
        channel_order: the colour order the weights were trained on and the original code feeds (``rgb``, or
            ``bgr`` for images read with ``cv2.imread`` and not converted). Every module is handed RGB; a
            ``bgr`` network's module reverses the channels itself, so exports and training see the same.
        size_divisor: the network input height and width must be multiples of this; inputs are
            padded to it and the output unpadded.
        checkpoint_loader: ``"module:function"`` loading a weights file into the built module.
        needs_weights: whether a weights file is required (the published networks).
        licence: licence of the architecture / official weights.
        weights_source: where official weights come from (for the user to fetch themselves).
        onnx_file: for ``kind == "onnx"``: file name inside ``rtstereo/weights``.
        network: for ``kind == "hybrid"``: the registry name of the network it runs.
        fixed_size_hw: input size of a fixed-shape model; other sizes are resized (never silently).
        min_size_px: the padded input is at least this tall and wide (a multiple of ``size_divisor``; 0: no
            minimum beyond the divisor), for networks that need more than one cell of their coarsest level.
        fill_left_border: whether predictions fill the unmatched left band of each row by default
            (:func:`rtstereo.runtime.postprocess.fill_left_border`; ``--set fill_left_border=...``).
        refine_edges: whether predictions sharpen their depth edges against the images by default
            (:func:`rtstereo.runtime.refine.refine_edges`; ``--set refine_edges=...``).
        weight_settings: the settings that shape the weights (rtnet's ``max_disp``: its cost volume's levels are
            channels of a convolution): a checkpoint, and an export of it, fit one value of each, so another value
            is another network to train, not to export again.
    """

    name: str
    summary: str
    kind: Kind
    builder: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    setting_help: Mapping[str, str] = field(default_factory=dict)
    normalization: Normalization = "none"
    channel_order: ChannelOrder = "rgb"
    size_divisor: int = 1
    checkpoint_loader: str | None = None
    needs_weights: bool = False
    licence: str = ""
    weights_source: str = ""
    onnx_file: str | None = None
    network: str | None = None
    fixed_size_hw: tuple[int, int] | None = None
    min_size_px: int = 0
    fill_left_border: bool = False
    refine_edges: bool = False
    weight_settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "setting_help", MappingProxyType(dict(self.setting_help)))

    def resolve_settings(
        self, overrides: Mapping[str, Any] | None = None, runtime_options: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """The defaults updated by ``overrides``, each value coerced to the default's type.

        Strings (from ``--set key=value``) are parsed; unknown keys fail with close matches, among them
        ``runtime_options``: the backends' own settings by backend, the one it runs on first (its settings the
        caller took out of ``overrides``: ``threads`` for ONNX Runtime), then the others it could run on
        (``--backend onnxruntime`` for a PyTorch network), named so that a user finds the setting and the
        backend that has it.
        """
        runtime_options = dict(runtime_options or {})
        settings = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key not in self.defaults:
                raise InputError(self._no_setting(key, runtime_options))
            settings[key] = coerce_setting(key, value, self.defaults[key])
        return settings

    def _no_setting(self, key: str, runtime_options: Mapping[str, Sequence[str]]) -> str:
        """The message for a setting the model does not have: every setting it could be given, and where."""
        from ..runtime.postprocess import POSTPROCESS_SETTINGS  # every model's switches (no cycle here)

        known = ", ".join(sorted(self.defaults)) or "none"
        backends = list(runtime_options)
        runtime = "".join(
            f"; and, of its runtime ({backend}), {', '.join(runtime_options[backend])}"
            if i == 0
            else f"; with --backend {backend}, {', '.join(runtime_options[backend])}"
            for i, backend in enumerate(backends)
            if runtime_options[backend]
        )
        names = [*self.defaults, *POSTPROCESS_SETTINGS, *(k for b in backends for k in runtime_options[b])]
        elsewhere = [b for b in backends[1:] if key in runtime_options[b]]
        # matched in small letters: MAX_DISP, as a constant is written, had no "did you mean max_disp?"
        lowered = key.lower() if isinstance(key, str) else ""
        if not isinstance(key, str):
            hint = unknown_setting_hint(key, names)
        elif lowered == "threads" or ("threads" not in names and difflib.get_close_matches(lowered, ["threads"])):
            # the CPU threads of every library: an option on every backend
            hint = (  # one message for both: rtstereo.load(threads=N) got a command-line option only
                ": CPU threads are an option of their own, --threads N (from Python: "
                "rtstereo.runtime.providers.limit_threads(N) before loading)"
            )
        elif elsewhere:
            hint = (
                f": {key} is a setting of the {elsewhere[0]} backend, add --backend {elsewhere[0]} (backend= in Python)"
            )
        else:
            hint = unknown_setting_hint(key, names)
        return (
            f"model '{self.name}' has no setting '{shortened(key)}' (it has: {known}; and, as every model, "
            f"{', '.join(POSTPROCESS_SETTINGS)}{runtime}){hint}"
        )


def unknown_setting_hint(key: Any, names: Sequence[str]) -> str:
    """What to add to the refusal of a setting ``key`` that a model (of settings ``names``) has not: the close names,
    matched in small letters (MAX_DISP, as a constant is written, had no "did you mean max_disp?"); for a calibration,
    where it goes; for a name that is no text, that names are (difflib failed on it: "'int' object is not iterable").

    Examples:
        >>> unknown_setting_hint("MAX_DISP", ["max_disp", "block_size"])
        '; did you mean max_disp?'
        >>> unknown_setting_hint(64, ["max_disp"])
        ': settings are named by text, got int 64'
    """
    if not isinstance(key, str):
        return f": settings are named by text, got {type(key).__name__} {shortened(key)}"
    if key.lower() in ("calibration", "calib"):  # the rig's, given with the model: it goes with each pair
        return (
            ": a calibration goes with the pairs, not the model: model.predict(left, right, calibration=...) "
            "(--calib FILE on the command line)"
        )
    close = difflib.get_close_matches(key.lower(), list(dict.fromkeys(names)), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce_setting(key: str, value: Any, default: Any) -> Any:
    """Parse ``value`` into the type of ``default`` (bool, int, float, str, or None = any).

    Examples:
        >>> coerce_setting("two_pass", "true", False)
        True
        >>> coerce_setting("max_disp", "192", 128)
        192
    """
    if default is None:
        return value
    # True would pass as 1 (max_disp=True), and so would numpy's (a mask's value, np.True_), which is no bool
    if isinstance(value, (bool, np.bool_)) and not isinstance(default, bool):
        expected = {int: "a whole number", float: "a number"}.get(type(default), "text")
        raise InputError(f"setting '{key}': expected {expected}, got {shortened(value)}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InputError(f"setting '{key}': expected true or false, got '{shortened(value)}'")
    if isinstance(default, int):
        # exact, not through a float: threads=10**30 was refused as "threads 1000000000000000019884624838656"
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,4000}\s*", value):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):  # past int()'s 4300 digits
            size = "out of range" if value.strip().startswith("-") else "too large"
            raise InputError(f"setting '{key}': {shortened(value.strip())} is {size}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"setting '{key}': expected a whole number, got '{shortened(value)}'") from None
        if math.isinf(number) and "inf" not in str(value).lower():  # 1e400: a number, past a float's range
            raise InputError(f"setting '{key}': {shortened(str(value).strip())} is too large")
        if not math.isfinite(number) or number != int(number):
            raise InputError(f"setting '{key}': expected a whole number, got '{shortened(value)}'")
        return int(number)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"setting '{key}': expected a number, got '{shortened(value)}'") from None
    return str(value)


def import_object(path: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"``."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


_REGISTRY: dict[str, ModelSpec] = {}
# The name that stands for the best method (rtstereo.models.resolve_alias), offered beside the registry's.
ALIAS = "default"
# `default` names the method that is best on the selection set, ../shared/data/validation (never on
# ../shared/data/real, the report set): the hybrid (the packaged network with SGBM's confident
# matches), whose mean bad-2 on its 22 Middlebury scenes is lower than SGBM's and than the network's
# alone (benchmarks/results/validation/; training/SELECTION.md, addendum of session 10).
DEFAULT_ALIAS = "hybrid"


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


# What a model given by its file ends with (an exported network, an rtstereo checkpoint), not a registry name.
_FILE_SUFFIXES = (".onnx", ".pt", ".pth", ".ckpt", ".tar")


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name`` (``default``: the model it stands for); unknown names fail with
    the close matches."""
    if not isinstance(name, str):  # a bare TypeError from difflib before
        raise InputError(f"model name: expected a str (rtstereo.list_models()), got {type(name).__name__} {name!r:.80}")
    if name.lower() == ALIAS:  # it said "unknown model 'default'. Did you mean: default?"
        name = DEFAULT_ALIAS
    try:  # a name in other letters is the model's own (SGBM: sgbm), as --pattern and --format ignore case
        return _REGISTRY[name if name in _REGISTRY else name.lower()]
    except KeyError:
        names = [*_REGISTRY, ALIAS]
        same = [known for known in names if known.lower() == str(name).lower()]  # "SGBM": names are lower case
        close = same or difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        # get_spec takes no file: it advised "give the path of an exported .onnx file", which only load() takes
        a_file = "/" in name or "\\" in name or name.lower().endswith(_FILE_SUFFIXES)
        load = f"rtstereo.load({name!r}), --model {name}" if a_file else "rtstereo.load(PATH), --model PATH"
        raise ModelNotFoundError(
            f"unknown model '{name}'.{hint} Known models: {', '.join(sorted(_REGISTRY))}, and {ALIAS} "
            f"(or load an exported .onnx file or an rtstereo checkpoint by its path: {load})"
        ) from None


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted; case is ignored on every system
    (``fnmatch.fnmatch`` ignores it on Windows only: ``GWC*`` found nothing on Linux).

    Examples:
        >>> "sgbm" in list_models(), list_models("GWCNET-*")
        (True, ['gwcnet-g', 'gwcnet-gc'])
    """
    if not isinstance(pattern, str):  # an AttributeError ('int' object has no attribute 'lower') before
        raise InputError(f"pattern: expected a str such as 'gwc*', got {type(pattern).__name__} {pattern!r:.80}")
    return sorted(name for name in _REGISTRY if matches_name(name, pattern))


def matches_name(name: str, pattern: str) -> bool:
    """Whether a model name matches a shell-style pattern, whatever the case of either.

    Examples:
        >>> matches_name("default", "DEF*"), matches_name("sgbm", "bm")
        (True, False)
    """
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())
