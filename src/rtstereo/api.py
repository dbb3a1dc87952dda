"""The Python entry points: :func:`load` a model by name (or file), then ``predict``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CheckpointError, InputError, ModelNotFoundError, RtStereoError, require, warn
from .io.download import file_url_path, is_url, read_downloaded, refuse_other_url
from .models import get_spec, is_onnx_file, list_models, resolve_alias
from .models.checkpoint import CHECKPOINT_SUFFIXES, NotSelfDescribing  # the suffixes name a checkpoint file
from .models.registry import ModelSpec, coerce_setting, import_object
from .runtime.backends import OpenCVBackend, TorchBackend, torch_runtime_options
from .runtime.heap import keep_freed_memory
from .runtime.postprocess import POSTPROCESS_SETTINGS
from .runtime.predictor import FITS, Predictor, check_fit, warn_unguided
from .types import Calibration, DisparityResult

if TYPE_CHECKING:  # imported where the hybrid is built: its modules are not needed for the other models
    from .runtime.hybrid import HybridPredictor

BACKENDS = ("torch", "onnxruntime", "opencv")
PRECISIONS = ("fp32", "fp16", "bf16")


def load(
    model: str | os.PathLike[str] = "default",
    *,
    weights: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    settings: dict[str, Any] | None = None,
    fit: str = "resize",
    **setting_kwargs: Any,
) -> Predictor | HybridPredictor:
    """Build a ready-to-run predictor.

    Args:
        model: a registry name (``rtstereo.list_models()``), ``"default"``, the path of an
            exported ``.onnx`` file, or the path of an rtstereo checkpoint (it names its model); a path
            as a string or a :class:`~pathlib.Path`.
        weights: checkpoint file or URL for the registry networks that take one (URLs are downloaded
            once into the cache). Refused for models that carry their weights or have none: classical
            methods, the hybrid, packaged networks, ``.onnx`` files and rtstereo checkpoints.
        backend: ``torch``, ``onnxruntime`` or ``opencv`` (in any case); by default the model's natural one.
        device: ``cpu`` or ``cuda[:N]``, or a ``torch.device`` of one (PyTorch / ONNX Runtime; classical methods run
            on the CPU); in any case, recorded in lower case.
        precision: ``fp32``, ``fp16`` (CUDA) or ``bf16``; in any case, recorded in lower case.
        settings: model settings (see ``rtstereo models NAME``), e.g. ``{"max_disp": 128}``, and the
            post-processing switches ``fill_left_border`` and ``refine_edges`` that every model
            takes (default: the model's).
        fit: how a network fixed at one size (an ONNX file exported at one HxW) meets pairs of another size:
            ``"resize"`` (both views resized to it, stretched where the aspect ratio differs) or ``"crop"`` (the
            centred window of its aspect ratio cut from both views and resized; the result is that window's map:
            :class:`~rtstereo.runtime.predictor.Predictor`); ``"crop"`` is refused for a model that takes any size.
        **setting_kwargs: the same settings as keyword arguments (one given both ways must agree).

    A model loaded for the CPU tells glibc's malloc to keep the memory the process frees for reuse
    (:func:`~rtstereo.runtime.heap.keep_freed_memory`): the process then keeps its peak memory.

    Returns:
        A :class:`~rtstereo.runtime.predictor.Predictor`, or for the hybrid (``default``) a
        :class:`~rtstereo.runtime.hybrid.HybridPredictor`, which is no subclass of it (``isinstance(m,
        rtstereo.Predictor)`` is ``False`` for ``default``) but has the same ``predict``, ``predict_pair``,
        ``name``, ``settings``, ``spec``, ``fit``, ``close`` and post-processing switches; call
        ``.predict(left, right)``.

    Raises:
        ModelNotFoundError: an unknown model name.
        InputError: an unknown setting or backend, a device or precision that is not one of the above,
            ``weights`` for a model that takes none or that is no path nor URL (or a URL of a scheme not read,
            ``s3://``), or a network without the weights it needs.
        CheckpointError: a model or weights file that is missing or not a checkpoint.
        MissingDependencyError: a network that runs in PyTorch (registry networks, rtstereo checkpoints)
            without torch installed.

    Examples:
        >>> import rtstereo
        >>> rtstereo.load("sgbm", max_disp=64).settings["max_disp"]
        64
    """
    model = _model_argument(model)
    device = _device_argument(device)
    # In any case, as model names are ("FP16", backend="OpenCV", fit="Crop" were refused); a value refused keeps its own
    precision, backend, fit = (
        value.lower() if isinstance(value, str) and value.lower() in known else value
        for value, known in ((precision, PRECISIONS), (backend, BACKENDS), (fit, FITS))
    )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):  # Path() failed with a bare TypeError
        raise InputError(
            f"weights: expected a checkpoint file (str or Path) or its URL, got {type(weights).__name__} "
            f"{weights!r:.80}"
        )
    if isinstance(weights, str) and not weights.strip():  # Path("") is the working folder: "weights file . is a folder"
        raise InputError("weights: an empty path; give the checkpoint file or its URL, or leave weights out")
    if isinstance(weights, str):  # s3://b/w.tar was "weights file not found: s3:/b/w.tar", the URL made into a path
        refuse_other_url(weights, "weights")
    if settings is not None and not isinstance(settings, Mapping):
        raise InputError(
            f"settings: expected a dict of model settings such as {{'max_disp': 128}}, got {type(settings).__name__}"
        )
    settings = settings or {}
    clash = [k for k in setting_kwargs if k in settings and not _same_setting(settings[k], setting_kwargs[k])]
    if clash:  # neither silently wins, as --max-disp and --set max_disp= on the command line
        raise InputError(
            "settings given twice, differently: "
            + ", ".join(f"settings[{k!r}]={settings[k]!r} and {k}={setting_kwargs[k]!r}" for k in clash)
        )
    overrides = {**settings, **setting_kwargs}
    # None is the model's default, as for every other setting (refine_edges=None was "expected true or false")
    switches = {name: overrides.pop(name) for name in POSTPROCESS_SETTINGS if name in overrides}
    switches = {name: value for name, value in switches.items() if value is not None}
    if fit != "resize":  # checked before the model loads; "crop" once its size is known
        check_fit(fit, (0, 0), "")
    predictor = _load(model, weights, backend, device, precision, overrides)
    if fit != "resize":
        try:
            predictor.fit = fit  # each kind's own check: "crop" is for a network fixed at one size, alone
        except InputError:
            predictor.close()
            raise
    if isinstance(predictor, Predictor) and predictor.guided:  # a file of one, or the registry's rtnet-guided: alone
        warn_unguided(model)
    for name, value in switches.items():
        setattr(predictor, name, coerce_setting(name, value, False))
    if device == "cpu":  # its pre- and post-processing's temporaries are not mapped and zeroed anew for each pair
        keep_freed_memory()
    return predictor


# The backend each kind of registry model runs on when none is named.
_OWN_BACKEND = {"classical": "opencv", "onnx": "onnxruntime", "hybrid": "onnxruntime", "network": "torch"}


def memory_plan_before_load(
    model: str | os.PathLike[str], settings: Mapping[str, Any] | None = None, backend: str | None = None
) -> Callable[[tuple[int, int]], tuple[int, int] | None] | None:
    """The ``memory_plan`` of the predictor :func:`load` builds for a registry model, known before it is built:
    ``video`` and ``live`` ask it of the frame size a video's header or an open camera gives, so that a size no
    smaller size of fits the memory budget is refused before the model loads (seconds, more with torch), in the words
    the loaded model's plan gives (:func:`~rtstereo.runtime.memory.plan_network_size`, with the same arguments).

    Args:
        model, settings, backend: as :func:`load` takes them.

    Returns:
        A function of ``(H, W)`` as :meth:`Predictor.memory_plan`, or ``None`` where only the loaded model knows its
        plan (a file, whose export may fix its size; the hybrid with another network; a backend other than the
        model's own) or where :func:`load` refuses the model or its settings (it says why).

    Examples:
        >>> memory_plan_before_load("sgbm", {"max_disp": 16})((480, 640)) is None
        True
        >>> memory_plan_before_load("nets/m.onnx") is None
        True
    """
    from .models.sgbm import num_disparities
    from .runtime.memory import plan_network_size

    if not isinstance(model, (str, os.PathLike)) or not isinstance(settings, (Mapping, type(None))):
        return None  # load refuses them, and says why (os.fspath's TypeError, settings.items()'s AttributeError)
    name = resolve_alias(str(os.fspath(model)))
    if name not in list_models():
        return None
    spec = get_spec(name)
    if backend not in (None, _OWN_BACKEND.get(spec.kind)):
        return None
    try:  # the model's own settings; the switches and runtime options every model takes do not change its memory
        resolved = spec.resolve_settings({k: v for k, v in (settings or {}).items() if k in spec.defaults})
    except RtStereoError:
        return None
    max_disp = resolved.get("max_disp")
    if spec.kind == "hybrid":  # the range of its network, the packaged one
        if resolve_alias(str(resolved.get("network"))) != spec.network:
            return None
        max_disp = get_spec(spec.network).defaults.get("max_disp")
    elif spec.kind == "onnx" and max_disp != spec.defaults.get("max_disp"):  # fixed in the graph: load refuses it
        return None
    elif spec.kind == "classical" and max_disp is not None:  # OpenCV's matchers search a multiple of 16
        max_disp = num_disparities(int(max_disp))
    max_disp_px = float(max_disp) if max_disp is not None else None

    def plan(input_hw: tuple[int, int]) -> tuple[int, int] | None:
        return plan_network_size(spec.name, spec.kind, max_disp_px, input_hw, spec.size_divisor, spec.fixed_size_hw)

    return plan


def _model_argument(model: Any) -> str:
    """``model`` as :func:`load` reads it: a name, or a path given as a string or a :class:`~pathlib.Path`
    (``weights`` took a ``Path``; ``model`` failed with ``AttributeError: 'PosixPath' object has no attribute
    'lower'``).

    Raises:
        InputError: neither a string nor a path, or an empty one (``""`` is no name; ``None`` is the default).

    Examples:
        >>> _model_argument(Path("nets/m.onnx")), _model_argument("sgbm"), _model_argument(None)
        ('nets/m.onnx', 'sgbm', 'default')
    """
    if model is None:  # the default, as resolve_alias reads it
        return "default"
    if isinstance(model, (str, os.PathLike)):
        text = str(os.fspath(model))
        if not text.strip():  # "" loaded the default without a word, where the command line refuses --model ""
            raise InputError(
                "model: an empty name; give a registry name (rtstereo.list_models()) or the path of an .onnx file "
                "or rtstereo checkpoint, or leave model out for the default"
            )
        # "~/nets/m.onnx" is the home folder's, as the shell makes it (no registry name starts with "~")
        return os.path.expanduser(text) if text.startswith("~") else text
    # a model loaded already (rtstereo.predict(left, right, m)) was named by its whole repr, with no word of its predict
    loaded = (
        "; a model loaded already is called itself: model.predict(left, right)"
        if callable(getattr(model, "predict", None))
        else ""
    )
    raise InputError(
        f"model: expected a registry name (rtstereo.list_models()) or the path of an .onnx file or rtstereo "
        f"checkpoint, got {type(model).__name__} {model!r:.80}{loaded}"
    )


def _device_argument(device: Any) -> str:
    """``device`` as :func:`load` reads it: a string in any case, as model names are (``"CPU"`` was refused), recorded
    in lower case, or a ``torch.device`` as its string (``torch.device("cpu")`` was refused as "device must be cpu or
    cuda[:N], got 'cpu'"); torch is not imported for it.

    Raises:
        InputError: neither (the value checked against the devices is a string: ``_check_device``).

    Examples:
        >>> _device_argument("cuda:1"), _device_argument("CPU")
        ('cuda:1', 'cpu')
        >>> _device_argument(0)
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: device: expected 'cpu' or 'cuda[:N]' (a str or a torch.device), got int 0
    """
    if isinstance(device, str):  # a device refused is named as it was given
        return device.lower() if _known_device(device.lower()) else device
    if type(device).__module__ == "torch" and type(device).__name__ == "device":
        return str(device)  # "cpu", "cuda", "cuda:1"
    raise InputError(
        f"device: expected 'cpu' or 'cuda[:N]' (a str or a torch.device), got {type(device).__name__} {device!r:.80}"
    )


# The hybrid's network is one setting, without --weights: a network that needs them goes in as a file.
_HYBRID_WEIGHTS_HINT = (
    "export the network with its weights and give that file (rtstereo export {name} --weights FILE --dynamic --size "
    "HxW -o net.onnx, then --set network=net.onnx), or an rtstereo checkpoint (--set network=CHECKPOINT.pt; "
    "network= in Python)"
)


def _same_setting(a: Any, b: Any) -> bool:
    """Whether two values of one setting say the same (``64`` and ``64.0``, ``True`` and ``"true"``), as the
    command line takes ``--max-disp 64 --set max_disp=64.0``.

    Examples:
        >>> _same_setting(64, 64.0), _same_setting(True, "true"), _same_setting("raw", "auto")
        (True, True, False)
    """
    if str(a) == str(b):
        return True
    for kind in (False, 0.0):  # read both as a switch, then as a number
        try:
            return coerce_setting("", a, kind) == coerce_setting("", b, kind)
        except InputError:
            continue
    return False


def names_a_path(model: str) -> bool:
    """Whether a model argument is written as a path (a checkpoint suffix, or a folder in it) rather than a
    registry name: a missing one is then a file not found, not an unknown model with close names.

    Examples:
        >>> names_a_path("runs/x/best.pt"), names_a_path("mine.ckpt"), names_a_path("rtnet-v5")
        (True, True, False)
    """
    path = Path(model)
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or len(path.parts) > 1 or model.endswith(("/", os.sep))


def check_model_file(model: str) -> None:
    """Refuse a model argument that names a file (an ``.onnx`` or checkpoint suffix, or a folder in it)
    that does not exist; registry names and existing files pass.

    A path, not a name: "unknown model ... Did you mean: rtnet-guided?" would send a mistyped path elsewhere.

    Raises:
        CheckpointError: no such file, or a folder (named with the model files in it).

    Examples:
        >>> check_model_file("sgbm")
        >>> check_model_file("runs/nope/best.pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rtstereo.errors.CheckpointError: model file not found: runs/nope/best.pt (an rtstereo checkpoint ...)
    """
    name = resolve_alias(model)
    _refuse_url(name)
    _refuse_external_data(name)
    path = Path(name)
    if name in list_models() or path.is_file():
        return
    if path.is_dir():  # a training run's folder, say: "not found" would be wrong, and the file is in it
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (*CHECKPOINT_SUFFIXES, ".onnx"))
        hint = f" (in it: {', '.join(inside[:4])}{', ...' if len(inside) > 4 else ''})" if inside else ""
        raise CheckpointError(
            f"model {name} is a folder: give a registry name (rtstereo models), an rtstereo checkpoint or an "
            f"exported .onnx file{hint}"
        )
    if is_onnx_file(name) or names_a_path(name):
        raise CheckpointError(
            f"model file not found: {name} (an rtstereo checkpoint or an exported .onnx file; registry names: "
            "rtstereo models)"
        )


def _refuse_external_data(model: str) -> None:
    """Refuse the ``.onnx.data`` file of an export given as the model (a shell's completion stops at it): it was read
    as a PyTorch checkpoint, "not a PyTorch file", or without torch "reading a PyTorch checkpoint needs torch".

    Raises:
        InputError: ``model`` is an existing file whose name ends in ``.onnx.data``.
    """
    if model.lower().endswith(".onnx.data") and Path(model).is_file():
        raise InputError(
            f"{model} holds the weights of an exported model, which `rtstereo export` writes beside it (external "
            f"data), and is no model itself: give the model, {Path(model).name[: -len('.data')]}"
        )


FAILED_EXPORT_SUFFIX = ".onnx.failed"  # what `rtstereo export` keeps of an export outside its tolerance


def failed_export_advice(path: str | Path) -> str:
    """What to do with ``<name>.onnx.failed``, which ``rtstereo export`` keeps when parity fails.

    Examples:
        >>> failed_export_advice("out/m.onnx.failed").split(": re-export")[0]
        'out/m.onnx.failed failed its parity check against PyTorch (report: out/m.parity.json)'
    """
    path = Path(path)
    report = path.with_name(f"{path.name[: -len(FAILED_EXPORT_SUFFIX)]}.parity.json")
    return (
        f"{path} failed its parity check against PyTorch (report: {report}): re-export it, or rename it to end in "
        ".onnx to run it all the same"
    )


def _refuse_url(model: str) -> None:
    """Refuse a model argument that is a URL in words that say so (as a path, ``https://h/m.onnx`` was "ONNX
    model not found: https:/h/m.onnx", a path made of the URL, which was never fetched).

    Raises:
        InputError: ``model`` is an http(s) or file URL.
    """
    local = file_url_path(model)
    if local is not None:  # "download the .onnx file" was no advice for a file of this machine
        raise InputError(f"model {model} is a URL: a model is a registry name or a local file: give its path, {local}")
    if is_url(model):
        raise InputError(
            f"model {model} is a URL: a model is a registry name or a local file; download the .onnx file or "
            "checkpoint and give its path (a URL of a registry network's weights goes in --weights, weights= in Python)"
        )


def _load(
    model: str,
    weights: str | os.PathLike[str] | None,
    backend: str | None,
    device: str,
    precision: str,
    overrides: dict[str, Any],
) -> Predictor | HybridPredictor:
    if backend is not None and backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}' (expected one of: {', '.join(BACKENDS)})")
    _check_device(device, precision)
    model = resolve_alias(model)
    _refuse_url(model)
    if model.lower().endswith(FAILED_EXPORT_SUFFIX):  # torch.load called it "not a PyTorch file"
        raise InputError(f"model {failed_export_advice(model)}")
    path = Path(model)
    if is_onnx_file(model):
        from .runtime.onnx import load_onnx

        if not path.exists():  # as a missing checkpoint is, and as bench and models say it ("ONNX model not found")
            check_model_file(model)
        _no_weights(model, weights, "an exported .onnx file carries its weights")
        _onnx_only(model, backend, path)
        return load_onnx(model, device=device, precision=precision, settings=overrides)
    _refuse_external_data(model)
    if path.is_file() and (path.suffix or model not in list_models()):  # a file, unless a registry name
        _no_weights(model, weights, "an rtstereo checkpoint carries its weights")
        return _load_self_describing(path, backend, device, precision, overrides)
    check_model_file(model)

    spec = get_spec(model)
    if spec.kind == "classical":
        _no_weights(spec.name, weights, "a classical method has no weights")
    elif spec.kind == "hybrid":
        _no_weights(
            spec.name, weights, "its network is a setting: --set network=CHECKPOINT_OR_ONNX, network= in Python"
        )
        _network_argument(overrides.get("network"))
    elif spec.kind == "onnx":
        _no_weights(
            spec.name,
            weights,
            "it ships with its weights; other weights of the same network: --model rtnet --weights FILE "
            "(rtstereo.load('rtnet', weights=FILE) in Python), or the rtstereo checkpoint as the model",
        )
    runtime = {}
    if spec.kind in ("onnx", "hybrid"):  # ONNX Runtime options travel with the settings, as for .onnx files
        from .runtime.onnx import RUNTIME_SETTINGS

        runtime = {k: overrides.pop(k) for k in RUNTIME_SETTINGS if k in overrides}
    elif spec.kind != "classical":
        runtime = _backend_options(overrides, backend)
    resolved = spec.resolve_settings(overrides, runtime_settings_by_backend(spec.kind, backend))
    if spec.kind == "classical":
        if backend not in (None, "opencv"):
            raise InputError(f"model '{spec.name}' runs only on the opencv backend, not '{backend}'")
        asked = (("device", device, "cpu"), ("precision", precision, "fp32"))
        given = [f"{what} {value!r}" for what, value, usual in asked if value != usual]
        if given:  # what was asked for alone: "precision 'fp32' apply to networks only" named the default too
            verb = "apply" if len(given) > 1 else "applies"
            warn(
                f"{spec.name} runs on the CPU in OpenCV's own arithmetic: {' and '.join(given)} {verb} to networks only"
            )
        return Predictor(spec, resolved, OpenCVBackend(import_object(spec.builder)(resolved)))
    if spec.kind == "hybrid":
        from .runtime.hybrid import HybridPredictor, network_threads

        if not str(resolved["network"]).strip():  # resolve_alias reads "" as default, the hybrid itself
            raise InputError(
                "the hybrid's network setting is empty: give a network (network=rtnet-guided), an .onnx file "
                "or an rtstereo checkpoint"
            )
        if is_url(str(resolved["network"])):  # the model's URL advice (--weights) is refused by the hybrid
            raise InputError(
                f"the hybrid's setting network={resolved['network']} is a URL: the hybrid reads a registry network's "
                "name or a local .onnx file or checkpoint; download the file and give its path"
            )
        name = resolve_alias(resolved["network"])
        is_path = is_onnx_file(name) or Path(name).suffix or (name not in list_models() and Path(name).exists())
        try:  # "unknown model 'rtnet-v4'" or "model file not found" named no setting, as if --model had been wrong
            kind = "file" if is_path else get_spec(name).kind
            if kind == "file":
                check_model_file(name)
        except (ModelNotFoundError, CheckpointError, InputError) as exc:
            raise type(exc)(f"the hybrid's setting network={resolved['network']}: {exc}") from None
        if kind in ("classical", "hybrid"):
            raise InputError(f"the hybrid's network must be a network, not '{name}' ({kind})")
        if kind == "network" and get_spec(name).needs_weights:  # "pass --weights" would send the user to a refusal
            raise InputError(
                f"the hybrid's network '{name}' needs its weights, and the hybrid takes no --weights (weights=): "
                + _HYBRID_WEIGHTS_HINT.format(name=name)
            )
        asked = dict(runtime)
        cpu_threads = runtime.get("threads") if device == "cpu" else None  # the hybrid's own threads bounded too
        if (is_onnx_file(name) or kind == "onnx") and backend not in (None, "onnxruntime"):
            raise InputError(
                f"the hybrid's network '{name}' is an ONNX file and runs only on the onnxruntime backend, not "
                f"'{backend}' (--set network=CHECKPOINT.pt, network= in Python, runs a PyTorch network in the hybrid)"
            )
        if is_onnx_file(name) or kind == "onnx" or backend == "onnxruntime":
            if device == "cpu":  # SGBM runs beside the network on one thread of its own
                runtime["threads"] = network_threads(runtime.get("threads"))
        else:  # a PyTorch network: its threads are the process's (torch.set_num_threads, --threads)
            runtime.pop("threads", None)
            asked = runtime
        if runtime != asked and _guided_onnx_file(name, kind):  # known before its session opens: opened once
            runtime = asked
        try:
            network = _load(name, None, backend, device, precision, dict(runtime))
        except NotSelfDescribing as exc:  # a published network's own file: --model NAME --weights is no way here
            raise CheckpointError(
                f"{name} is not an rtstereo checkpoint (it does not name its model); for a published network's own "
                "file in the hybrid, " + _HYBRID_WEIGHTS_HINT.format(name=exc.network or "NAME")
            ) from exc
        # it runs after SGBM, not beside it: every thread (a network whose file could not say so before it loaded)
        if getattr(network, "guided", False) and runtime != asked:
            network = _load(name, None, backend, device, precision, asked)
        return HybridPredictor(spec, resolved, network, threads=cpu_threads)
    if spec.kind == "onnx":
        from .runtime.onnx import load_packaged

        _onnx_only(spec.name, backend)
        return load_packaged(spec, device=device, precision=precision, settings={**resolved, **runtime})
    return _load_network(spec, resolved, weights, backend or "torch", device, precision, runtime, given=set(overrides))


def _network_argument(network: Any) -> None:
    """Refuse a hybrid's ``network=`` that is neither a name nor a path (``None`` is its default): a loaded predictor
    was read as the text of its repr, "model file not found: Predictor('rtnet-v5', settings=...)", the repr twice.

    Raises:
        InputError: ``network`` is of another type.
    """
    if network is None or isinstance(network, (str, os.PathLike)):
        return
    loaded = (
        "; a loaded model is not taken: give the name or file it was loaded from (network='rtnet-v5', "
        "network='net.onnx')"
        if callable(getattr(network, "predict", None))
        else ""
    )
    raise InputError(
        "the hybrid's setting network: expected a registry name or the path of an .onnx file or rtstereo checkpoint, "
        f"got {type(network).__name__}{loaded}"
    )


def _guided_onnx_file(name: str, kind: str) -> bool:
    """Whether the hybrid's network ``name`` is an ONNX file of a guided network, as its metadata says (False where
    it cannot say: a checkpoint, a file without rtstereo metadata; such a network is loaded again if it is)."""
    from .runtime.onnx import file_contract, packaged_path

    if kind == "onnx":
        path = packaged_path(get_spec(name))
    elif is_onnx_file(name):
        path = Path(name)
    else:
        return False
    contract = file_contract(path)
    return contract is not None and bool(contract.settings.get("guided"))


def _known_device(device: str) -> bool:
    """Whether ``device`` is ``cpu`` or ``cuda[:N]``, in lower case."""
    head, _, index = str(device).partition(":")
    # "²" is a digit to str.isdigit, which int() refuses: cuda:² passed here and crashed in the backend
    return device == "cpu" or (head == "cuda" and (not index or (index.isascii() and index.isdigit())))


def _check_device(device: str, precision: str) -> None:
    """Refuse a device or precision that no backend knows, whatever the model (a classical method runs on
    the CPU, but a mistyped value must not pass unnoticed)."""
    if not _known_device(device):
        raise InputError(f"device must be cpu or cuda[:N], got '{device}'")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got '{precision}'")


def _no_weights(model: str, weights: str | os.PathLike[str] | None, why: str) -> None:
    """Weights given to a model that would not use them are refused rather than ignored."""
    if weights is not None:
        raise InputError(
            f"model '{model}' takes no --weights ({why}); leave out --weights {weights} (weights= in Python)"
        )


def _onnx_only(model: str, backend: str | None, path: Path | None = None) -> None:
    """An ONNX model (a packaged network or an exported file, ``path``) runs on ONNX Runtime: another backend asked
    for is refused rather than ignored."""
    if backend not in (None, "onnxruntime") and path is not None:
        from .runtime.rt_stereo_onnx import MODEL, from_its_checkpoint, rt_stereo_file

        contract = rt_stereo_file(path)
        if contract is not None:  # its users have GwcNet's checkpoint, not an rtstereo one
            raise InputError(
                f"model '{model}' is RT-Stereo's GwcNet-gc ONNX file and runs only on the onnxruntime backend, not "
                f"'{backend}'; to run GwcNet-gc in PyTorch, give the checkpoint it was exported from: "
                f"{from_its_checkpoint(contract)} (model='{MODEL}', weights= in Python)"
            )
    if backend not in (None, "onnxruntime"):
        raise InputError(
            f"model '{model}' is an ONNX file and runs only on the onnxruntime backend, not '{backend}' "
            "(to run a network in PyTorch, give its rtstereo checkpoint as the model: --model, or rtstereo.load's "
            "first argument)"
        )


def runtime_settings_by_backend(kind: str, backend: str | None) -> dict[str, tuple[str, ...]]:
    """The settings a model of ``kind`` takes for its runtime beside its own (:func:`_backend_options`), by
    backend: the one it runs on first, then another it could run on (a network on ``onnxruntime`` too)."""
    from .runtime.backends import TORCH_RUNTIME_SETTINGS
    from .runtime.onnx import RUNTIME_SETTINGS

    if kind in ("onnx", "hybrid"):
        return {"onnxruntime": RUNTIME_SETTINGS}
    if kind == "network" and backend == "onnxruntime":
        return {"onnxruntime": RUNTIME_SETTINGS, "torch": TORCH_RUNTIME_SETTINGS}
    if kind == "network":
        return {"torch": TORCH_RUNTIME_SETTINGS, "onnxruntime": RUNTIME_SETTINGS}
    return {}


def _backend_options(overrides: dict[str, Any], backend: str | None) -> dict[str, Any]:
    """Take the backend's own settings (``cuda_graphs``, ``providers``...) out of a network's settings."""
    if backend == "onnxruntime":
        from .runtime.onnx import RUNTIME_SETTINGS

        options = {k: overrides.pop(k) for k in RUNTIME_SETTINGS if k in overrides}
        if "threads" in options:
            options["threads"] = coerce_setting("threads", options["threads"], 1)
        return options
    return torch_runtime_options(overrides)


def warn_unread_settings(
    weights: str | os.PathLike[str], metadata: Any, settings: Mapping[str, Any], given: set[str]
) -> None:
    """Warn when an rtstereo checkpoint given as weights stored settings unlike those the network runs with.

    Args:
        weights: the file, as given.
        metadata: what the model's checkpoint loader returned (its ``settings``: those stored in the file).
        settings: the settings the network was built with.
        given: the names of those the caller asked for (never warned about).
    """
    stored = (metadata.get("settings") or {}) if isinstance(metadata, Mapping) else {}
    unlike = [
        f"{key}={value!r} (runs with {settings[key]!r})"
        for key, value in stored.items()
        if key in settings and key not in given and not _same_setting(settings[key], value)
    ]
    if unlike:  # max_disp changes no GwcNet weight: a network trained at 48 ran at 192 without a word
        warn(
            f"{weights} is an rtstereo checkpoint saved with {', '.join(unlike)}: as --weights (weights=) its "
            "settings are not read; give them (--set KEY=VALUE, KEY=VALUE in Python), or the file itself in place of "
            f"the model name ({weights})"
        )


def load_weights(spec: ModelSpec, module: Any, weights: str | os.PathLike[str]) -> tuple[Any, Path]:
    """Load a weights file, or a URL's (downloaded once into the cache), into ``module`` with its model's loader.

    Returns:
        What the loader returned (the file's metadata), and the local file read.

    Raises:
        CheckpointError: the file holds no weights of this network; for a URL the error names the URL, and what it
            gave is not kept in the cache (a rerun downloads it again).
    """
    loader = import_object(spec.checkpoint_loader)
    if not is_url(str(weights)):
        local = Path(os.path.expanduser(os.fspath(weights)))
        return loader(module, local), local
    # what the URL gave that is not these weights is not kept: a rerun downloads it again
    return read_downloaded(
        str(weights), lambda local: (loader(module, local), local), subdir="weights", refused=CheckpointError
    )


def _load_network(
    spec: ModelSpec,
    settings: dict[str, Any],
    weights: str | os.PathLike[str] | None,
    backend: str,
    device: str,
    precision: str,
    runtime: dict[str, Any] | None = None,
    given: set[str] | None = None,
) -> Predictor:
    """``given``: the settings the caller named; an rtstereo checkpoint's stored ones that differ from the others
    are said in a warning (the file's settings apply only when it is the model itself)."""
    if backend == "opencv":
        raise InputError(f"model '{spec.name}' is a network: use --backend torch or onnxruntime (backend= in Python)")
    if spec.needs_weights and weights is None:
        raise InputError(
            f"model '{spec.name}' needs its weights: pass --weights FILE_OR_URL (weights= in Python; "
            f"official weights: {spec.weights_source})"
        )
    if weights is not None and is_onnx_file(str(weights)):  # torch.load called it "a plain pickle, or damaged"
        # a URL is no model: "--model URL" was advised, and refused; a file:// URL's file is here already
        local = file_url_path(str(weights)) or str(weights)
        run = (
            "download it and run the file as the model (--model FILE, or rtstereo.load(FILE))"
            if is_url(local)
            else f"run it as the model (--model {local}, or rtstereo.load({local!r}))"
        )
        raise InputError(
            f"--weights {weights} is an exported ONNX model, which carries its weights: {run} without weights, or "
            "give as weights (--weights, weights= in Python) the PyTorch checkpoint it was made from"
        )
    require("torch", "torch", f"the network '{spec.name}' (run exported .onnx files without torch)")
    module = import_object(spec.builder)(settings)
    if weights is not None:
        metadata, _ = load_weights(spec, module, weights)
        warn_unread_settings(weights, metadata, settings, given or set())
    source = None if weights is None else str(weights)  # recorded in results as given: a URL stays a URL
    if backend == "onnxruntime":
        from .export.on_demand import predictor_from_module

        predictor = predictor_from_module(spec, settings, module, device=device, precision=precision, **(runtime or {}))
        predictor.weights = source
        return predictor
    backend_runner = TorchBackend(module, device=device, precision=precision, **(runtime or {}))
    return Predictor(spec, settings, backend_runner, weights=source)


def _load_self_describing(
    path: Path, backend: str | None, device: str, precision: str, overrides: dict[str, Any]
) -> Predictor:
    from .models.checkpoint import read_self_describing

    _, (name, saved) = read_self_describing(
        path,
        "it holds {network} weights: pass --model {network} --weights {path} "
        "(rtstereo.load({network!r}, weights={path!r}) in Python)",
        "pass --model NAME --weights FILE (rtstereo.load(NAME, weights=FILE) in Python) for the published networks' "
        "own files",
    )
    spec = get_spec(name)
    overrides = dict(overrides)
    runtime = _backend_options(overrides, backend)
    settings = spec.resolve_settings({**saved, **overrides}, runtime_settings_by_backend(spec.kind, backend))
    try:
        # the file's own settings are read, and those given replace them on purpose: none goes unread
        return _load_network(spec, settings, path, backend or "torch", device, precision, runtime, given=set(settings))
    except CheckpointError:
        error = changed_network_error(path, name, saved, overrides)
        if error is None:
            raise
        raise error from None


def changed_network_error(path: Path, name: str, saved: Mapping[str, Any], overrides: Mapping[str, Any]):
    """The error for settings given with a checkpoint used as the model that its weights do not fit, or ``None``
    when none of them differs from the file's.

    The loader's advice, "give the checkpoint as the model and leave these settings out", went to a caller who had
    done the first: what to leave out is the setting that changed the network.
    """
    changed = {k: v for k, v in overrides.items() if k in saved and not _same_setting(saved[k], v)}
    if not changed:
        return None
    was = ", ".join(f"{k}={saved[k]}" for k in changed)
    asked = ", ".join(f"{k}={v}" for k, v in changed.items())
    return InputError(
        f"{path} holds {name} weights built with {was}; {asked} would be another network, which these weights do "
        f"not fit: leave {', '.join(changed)} out (the file sets {'them' if len(changed) > 1 else 'it'})"
    )


def predict(
    left: np.ndarray,
    right: np.ndarray,
    model: str | os.PathLike[str] = "default",
    calibration: Calibration | None = None,
    *,
    hints: np.ndarray | None = None,
    **kwargs: Any,
) -> DisparityResult:
    """One-shot convenience: ``load(model, **kwargs).predict(left, right, calibration=calibration)``.

    It builds the model at every call: for more than one pair, :func:`load` once and call ``predict``.

    Args:
        left: uint8 RGB ``(H, W, 3)`` (grey ``(H, W)`` is repeated to three channels).
        right: uint8 RGB, same size as ``left``.
        model: as :func:`load` takes it (default: ``"default"``, the hybrid).
        calibration: optional; carried into the result for depth and point clouds.
        hints: for a guided network alone (``"rtnet-guided"``): disparities known in advance, as
            :meth:`~rtstereo.runtime.predictor.Predictor.predict` takes them (another model refuses them).
        **kwargs: :func:`load`'s other arguments (``weights``, ``backend``, ``device``, ``precision``,
            ``settings``, ``fit``) and settings as keywords (``max_disp=64``).

    Returns:
        :class:`~rtstereo.types.DisparityResult` with ``disparity_px`` float32 ``(H, W)`` in pixels of
        the left image (with ``fit="crop"``, of the window ``preparation["crop"]`` names), ``nan`` where invalid.

    Examples:
        >>> import rtstereo
        >>> image = np.zeros((32, 48, 3), np.uint8)
        >>> rtstereo.predict(image, image, "sgbm", max_disp=16).disparity_px.shape
        (32, 48)
    """
    with load(model, **kwargs) as loaded:  # released once the map is made: its sessions, the hybrid's SGBM thread
        if hints is None:  # the hybrid's predict takes none
            return loaded.predict(left, right, calibration=calibration)
        if not isinstance(loaded, Predictor):
            raise InputError(f"{loaded.name} takes no hints (only a guided network alone does: SGBM's are its own)")
        return loaded.predict(left, right, calibration=calibration, hints=hints)
