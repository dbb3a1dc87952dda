"""Reading weights files: the published networks' own formats and rtstereo's self-describing one.

rtstereo's own checkpoints are ``torch.save`` dicts::

    {"format": "rtstereo-checkpoint", "version": 1, "model": NAME, "settings": {...},
     "state_dict": {...}, ...anything else the trainer keeps (optimizer, step, history)}

so that loading never needs architecture flags repeated by hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, missing_file_message, require
from ..io.atomic import partial_path

FORMAT_TAG = "rtstereo-checkpoint"
# Suffixes that name a checkpoint file (rtstereo's, or a published network's own).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".tar", ".bin", ".safetensors")


def read_torch_file(path: str | os.PathLike[str], what: str = "weights file") -> Any:
    """``torch.load`` a weights file on the CPU, safely, with errors that say what went wrong.

    Args:
        path: the file.
        what: what the caller gave it as, for the errors: ``"model file"`` for a file given as the model (an
            image given so was a "weights file" that is "not a PyTorch file", which nobody had given).

    Returns:
        Whatever the file holds (a dict for every format rtstereo reads).

    Raises:
        CheckpointError: the file is missing, truncated, or not a PyTorch file.
    """
    path = Path(path)
    if path.is_dir():  # the files it holds are named: it said "give the checkpoint file inside it" alone
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES)
        listed = f" ({', '.join(inside[:4])}{', ...' if len(inside) > 4 else ''})" if inside else " (it holds none)"
        raise CheckpointError(f"{what} {path} is a folder: give the checkpoint file inside it{listed}")
    if not path.is_file():
        raise CheckpointError(missing_file_message(what, path))
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} is empty: {path}")
    expected = EXPECTED_LAYOUT if what == "weights file" else "an rtstereo checkpoint or an exported .onnx file"
    with open(path, "rb") as handle:
        head = handle.read(512)
    # Files torch.load cannot read, named before torch is imported: without it, an image or the maps.npz of
    # `rtstereo calibrate` given as the model was told to install torch to read "a PyTorch checkpoint". (A safetensors
    # file is left to torch, which reads one where the safetensors package is installed.)
    other = other_file_kind(head)
    not_torch = f"{other}, not a PyTorch file" if other is not None else None
    if not_torch is None and head[8:9] != b"{":
        not_torch = archive_reason(path)
    if not_torch is not None:
        raise CheckpointError(f"cannot read {what} {path}: {not_torch}; expected {expected}")
    torch = require("torch", "torch", "reading a PyTorch checkpoint")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        # An exported network is a protobuf, which torch can only call "a plain pickle, or damaged".
        onnx = "an ONNX model, made for inference, not a PyTorch file" if path.suffix.lower() == ".onnx" else None
        reason = onnx or archive_reason(path) or load_failure_reason(exc)
        raise CheckpointError(f"cannot read {what} {path}: {reason}; expected {expected}") from exc
    damaged = damaged_entry(path)
    if damaged is not None:
        raise CheckpointError(
            f"cannot read {what} {path}: damaged: the bytes of its entry {damaged} do not match the checksum "
            "stored with them (a copy or download that went wrong: get the file again)"
        )
    incomplete = incomplete_checkpoint_reason(obj)
    if incomplete is not None:
        raise CheckpointError(f"{path} is tagged as an rtstereo checkpoint but {incomplete}")
    return obj


def incomplete_checkpoint_reason(obj: Any) -> str | None:
    """What an object tagged as an rtstereo checkpoint lacks (its model's name, its settings as a dict, its weights as
    a dict; each crashed with ``KeyError`` or ``TypeError``), or ``None`` for a complete one or any other object.

    Examples:
        >>> incomplete_checkpoint_reason({"format": FORMAT_TAG, "model": "anynet", "settings": {}})
        "holds no 'state_dict' (found: format, model, settings)"
        >>> incomplete_checkpoint_reason({"format": FORMAT_TAG, "model": "anynet", "state_dict": {}}) is None
        True
    """
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT_TAG:
        return None
    from . import get_spec, list_models  # the registry imports nothing heavy

    found = f" (found: {', '.join(map(str, list(obj)[:8]))})"
    for key, kind in (("model", str), ("state_dict", Mapping)):
        if key not in obj:
            return f"holds no {key!r}{found}"
        if not isinstance(obj[key], kind):
            return f"its {key!r} is a {type(obj[key]).__name__}, not a {'name' if kind is str else 'dict'}"
    if not isinstance(obj.get("settings", {}), Mapping):
        return f"its 'settings' is a {type(obj['settings']).__name__}, not a dict"
    if obj["model"] not in list_models():
        return (
            f"names a model this rtstereo does not know, {obj['model']!r} (written by another version?); known: "
            f"{', '.join(list_models())}"
        )
    kind = get_spec(obj["model"]).kind
    if kind != "network":  # an AttributeError or "Empty module name" from building it
        return f"names {obj['model']!r}, which is no PyTorch network that weights go into (its kind: {kind})"
    return None


EXPECTED_LAYOUT = "a torch.save file of tensors (a state dict, alone or under a key like 'model' or 'state_dict')"


def damaged_entry(path: Path) -> str | None:
    """The first entry of a ``torch.save`` zip file whose bytes do not match their CRC-32, or ``None`` (also for a
    file in torch's legacy tar format, which stores no checksums). ``torch.load`` does not check them: a file with a
    few bytes changed loaded, with wrong weights and no word of it."""
    with contextlib.suppress(OSError, zipfile.BadZipFile):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for entry in archive.infolist():
                    if entry.CRC == 0:  # none stored: torch.serialization.set_crc32_options(False) saves so
                        continue
                    try:
                        with archive.open(entry) as member:  # checks the CRC-32 at the end of the entry
                            while member.read(1 << 24):
                                pass
                    except zipfile.BadZipFile:
                        return entry.filename
    return None


def archive_reason(path: Path) -> str | None:
    """Why a file that ``torch.load`` refused is an archive around a checkpoint (a download packed in a tar, zip or
    gzip file; torch's messages about those speak of its legacy formats) or another framework's file, or ``None`` for
    any other file."""
    if path.suffix.lower() == ".mge":  # the official CREStereo release: torch.load called it "a plain pickle"
        return (
            "a MegEngine file (as the original CREStereo release), not a PyTorch one: use the PyTorch conversion of "
            "its weights (crestereo_eth3d.pth)"
        )
    with open(path, "rb") as handle:
        head = handle.read(512)
    other = other_file_kind(head)
    if other is not None:  # an image given as a model file was "not a PyTorch file (a plain pickle, or damaged)"
        return f"{other}, not a PyTorch file"
    if is_onnx_content(head) and path.suffix.lower() == ".onnx":  # named for what it is: no new name to give it
        return "an ONNX model, made for inference, not a PyTorch file"
    if is_onnx_content(head):  # an export under another name (model.bin, a download's name) was "a plain pickle"
        return (
            "an exported ONNX model, which carries its weights, not a PyTorch file: give it a name ending in .onnx and "
            "run it as the model"
        )
    if head[:6] == b"\x93NUMPY":  # np.save's file was "not a PyTorch file (a plain pickle, or damaged)"
        return "a NumPy .npy array file, not a torch.save file"
    if head[:2] == b"\x1f\x8b":
        return "a gzip-compressed file, not a torch.save file: decompress it (gunzip) and give the file inside"
    if head[:8] == b"\x89HDF\r\n\x1a\n":  # it was "not a PyTorch file (a plain pickle, or damaged)"
        return "an HDF5 file (as Keras and TensorFlow save weights), not a PyTorch one"
    # a safetensors file: the length of its JSON header (8 bytes, little-endian), then the header; recent torch.load
    # reads one by its suffix when the safetensors package is there, and its message was cut to "pip install saf"
    if head[8:9] == b"{" and 8 < int.from_bytes(head[:8], "little") < path.stat().st_size:
        return (
            "a safetensors file, not a torch.save file: convert it (torch.save(safetensors.torch.load_file(FILE), "
            "'weights.pth'))"
        )
    names: list[str] = []
    with contextlib.suppress(OSError, tarfile.TarError, zipfile.BadZipFile):
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                names = [member.name for member in archive.getmembers() if member.isfile()]
            if {"sys_info", "pickle", "storages", "tensors"} <= set(names):  # torch.save before PyTorch 0.4
                return (
                    "saved in PyTorch's tar format of before version 0.4, which cannot be read without running its "
                    "code: in a trusted environment, re-save its state dict with a recent PyTorch"
                )
            kind = "tar"
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
            kind = "zip"
    if not names or any(name.endswith("/data.pkl") for name in names):  # torch.save's own zip: its reason is torch's
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if kind == "zip" and all(name.endswith(".npy") for name in names):  # extracting it gives no checkpoint
        return f"a NumPy .npz file of arrays ({shown}), not a torch.save file"
    return f"a {kind} archive, not a torch.save file: extract it and give the checkpoint inside (it holds {shown})"


def is_onnx_content(head: bytes) -> bool:
    r"""Whether a file's first bytes are an ONNX model's: a protobuf ``ModelProto``, whose first field written is
    its ``ir_version`` (field 1, a small varint), followed by another of its fields (2-8: producer, domain, model
    version, doc string, graph, opsets). No pickle (``\x80``), zip (``PK``) or text starts so.

    Examples:
        >>> is_onnx_content(b"\x08\x08\x12\x08rtstereo"), is_onnx_content(b"\x80\x02}q\x00")
        (True, False)
    """
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in b"\x12\x1a\x22\x28\x32\x3a\x42"


# The first bytes of files that are often given by mistake where a model goes, and what they are.
_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"BM", "a BMP image"),
    (0, b"PF\n", "a PFM image or disparity map"),
    (0, b"Pf\n", "a PFM image or disparity map"),
    (8, b"WEBP", "a WebP image"),
    (8, b"AVI ", "an AVI video"),
    (4, b"ftyp", "an MP4 or QuickTime video"),
    (0, b"\x1aE\xdf\xa3", "a Matroska or WebM video"),
)


def other_file_kind(head: bytes) -> str | None:
    r"""What a file that is no model is, from its first bytes (up to 512): an image, a video, or text; ``None``
    for anything else.

    Examples:
        >>> other_file_kind(b"\x89PNG\r\n\x1a\n" + bytes(8))
        'a PNG image'
        >>> other_file_kind(b"left: 1\n")
        "a text file (it begins 'left: 1')"
        >>> other_file_kind(b"\x80\x02}q\x00") is None
        True
    """
    for offset, magic, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if b"PK\x03\x04".startswith(head[:4]):  # the start of torch.save's zip, cut short: not text
        return None
    text = ""
    for cut in range(4 if len(head) == 512 else 1):  # a character cut at the last byte read is still text
        with contextlib.suppress(UnicodeDecodeError):
            text = head[: len(head) - cut].decode("utf-8")
            break
    if text.strip() and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file (it begins {text.strip().splitlines()[0][:40]!r})"
    return None


def load_failure_reason(exc: BaseException) -> str:
    """A short reason for a failed ``torch.load``, instead of torch's multi-paragraph explanations.

    Examples:
        >>> load_failure_reason(RuntimeError("PytorchStreamReader failed reading zip archive: failed finding..."))
        'not a complete zip archive (cut short, or not written by torch.save)'
    """
    text = str(exc)
    if "zip archive" in text or "central directory" in text:
        return "not a complete zip archive (cut short, or not written by torch.save)"
    if "Unsupported operand" in text:  # pickle opcodes torch.save never writes
        return "not a PyTorch file (a plain pickle, or damaged)"
    if "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return f"it holds Python objects{what} besides tensors, refused for safety"
    if isinstance(exc, (KeyError, EOFError, pickle.UnpicklingError)) or "load key" in text:
        return "not a PyTorch file, or cut short"
    # what torch's readers raise when a file ends early: "IndexError: index out of range", "error: unpack requires
    # a buffer of 4 bytes" (struct's), or "OSError: [Errno 22] Invalid argument" (a seek before the file's start)
    if isinstance(exc, (IndexError, struct.error)) or (isinstance(exc, OSError) and exc.errno == errno.EINVAL):
        return "cut short, or damaged"
    if "unexpected EOF" in text:  # torch's legacy (pre-1.6, tar) format, as AnyNet's released files
        return "cut short (the file ends before its last tensor)"
    first = text.splitlines()[0][:120] if text else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def find_state_dict(obj: Any, path: str | Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The state dict inside a checkpoint object: under one of ``keys``, the object itself, or under the one other
    key that holds a dict of tensors alone (``model_state_dict``, as PyTorch's tutorial saves).

    Args:
        obj: what :func:`read_torch_file` returned.
        path: the file, for messages.
        keys: the top-level keys to look under, in order (``()`` = the object is the state dict).
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(obj).__name__}")
    if obj.get("format") == FORMAT_TAG:
        return _named(obj["state_dict"], path)
    for key in keys:
        if key in obj and isinstance(obj[key], Mapping):
            return _named(obj[key], path)
    if all(hasattr(v, "shape") for v in obj.values()) and obj:
        return _named(obj, path)
    nested = _tensor_dicts(obj)
    if len(nested) == 1:  # as PyTorch's tutorial saves it: {"model_state_dict": ..., "optimizer_state_dict": ...}
        return _named(obj[nested[0]], path)
    found = f"found keys: {', '.join(list(map(str, obj.keys()))[:8])}" if obj else "found an empty dict"
    wanted = " or ".join(repr(k) for k in keys) or "a bare state dict"
    raise CheckpointError(f"{path}: expected a checkpoint with {wanted}, {found}")


def _tensor_dicts(obj: Mapping[Any, Any]) -> list[Any]:
    """The keys of ``obj`` whose values are non-empty dicts of tensors alone (an optimizer's state dict holds lists
    and numbers as well).

    Examples:
        >>> import numpy as np
        >>> _tensor_dicts({"epoch": 3, "net": {"w": np.zeros(1)}, "optim": {"lr": 0.1}})
        ['net']
    """
    return [
        key
        for key, value in obj.items()
        if isinstance(value, Mapping) and value and all(hasattr(v, "shape") for v in value.values())
    ]


def _named(state_dict: Mapping[Any, Any], path: str | Path) -> dict[str, Any]:
    """A state dict whose keys are parameter names (tensors keyed by numbers crashed the prefix removal)."""
    other = next((key for key in state_dict if not isinstance(key, str)), None)
    if other is not None:
        raise CheckpointError(
            f"{path}: expected a state dict keyed by parameter names, found a key of type {type(other).__name__} "
            f"({other!r}); save the network's model.state_dict()"
        )
    return dict(state_dict)


# Prefixes that wrappers add to every key: DataParallel and DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# A PyTorch Lightning module's checkpoint holds the network under the attribute it was kept in, most often "model".
LIGHTNING_PREFIX = "model."


def strip_prefix(state_dict: Mapping[str, Any], prefix: str | None = None) -> dict[str, Any]:
    """Drop ``prefix`` from every key that has it; by default, every wrapper's (:data:`WRAPPER_PREFIXES`, in any
    order and number, as a compiled network inside ``DataParallel`` saves ``module._orig_mod.``), and
    PyTorch Lightning's :data:`LIGHTNING_PREFIX` where every key has it (no published network has a
    top-level module of that name; where only some keys have it, it is a module's own name, and kept).

    Examples:
        >>> strip_prefix({"module._orig_mod.conv.weight": 0, "conv.bias": 1})
        {'conv.weight': 0, 'conv.bias': 1}
        >>> strip_prefix({"model.conv.weight": 0, "model._orig_mod.conv.bias": 1})
        {'conv.weight': 0, 'conv.bias': 1}
        >>> strip_prefix({"model.conv.weight": 0, "head.bias": 1})
        {'model.conv.weight': 0, 'head.bias': 1}
        >>> strip_prefix({"net.conv.weight": 0}, "net.")
        {'conv.weight': 0}
    """
    if prefix is not None:
        return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state_dict.items()}

    def bare(key: str) -> str:
        while key.startswith(WRAPPER_PREFIXES):
            key = key[len(next(p for p in WRAPPER_PREFIXES if key.startswith(p))) :]
        return key

    stripped = {bare(k): v for k, v in state_dict.items()}
    if stripped and all(key.startswith(LIGHTNING_PREFIX) for key in stripped):
        stripped = {bare(k[len(LIGHTNING_PREFIX) :]): v for k, v in stripped.items()}
    return stripped


def identify_network(state_dict: Mapping[str, Any]) -> str | None:
    """The registry name of the network whose weights ``state_dict`` holds, by its top-level modules:
    ``gwcnet-g``, ``gwcnet-gc``, ``crestereo``, ``anynet`` or ``rtnet``; ``None`` for any other.

    Examples:
        >>> identify_network({"module.dres0.0.0.weight": 0, "module.classif0.0.0.weight": 0})
        'gwcnet-g'
        >>> identify_network({"dres0.0.weight": 0, "classif3.0.weight": 0, "feature_extraction.lastconv.0": 0}) is None
        True
        >>> identify_network({"conv.weight": 0}) is None
        True
    """
    keys = strip_prefix(strip_prefix(state_dict), "net.")
    modules = {key.split(".")[0] for key in keys}
    # classif0, GwcNet's head on dres1, sets it apart from PSMNet, whose dres0..dres4, classif1..3 and
    # feature_extraction.lastconv it shares: a PSMNet file was "gwcnet-gc weights; load it with model 'gwcnet-gc'"
    if {"dres0", "classif0"} <= modules:
        return "gwcnet-gc" if any(key.startswith("feature_extraction.lastconv.") for key in keys) else "gwcnet-g"
    if {"fnet", "update_block", "conv_offset_16"} <= modules:
        return "crestereo"
    if {"feature_extraction", "volume_postprocess"} <= modules:
        return "anynet"
    if {"encoder", "match", "aggregation"} <= modules:
        return "rtnet"
    return None


def network_of_file(obj: Any) -> str | None:
    """The registry name of the network whose weights a published network's own file holds (a state dict alone,
    under 'model' or 'state_dict', or under the file's only other dict of tensors, :func:`identify_network`); ``None``
    for any other file.

    Examples:
        >>> network_of_file({"epoch": 9, "model": {"module.dres0.0.0.weight": 0, "module.classif0.0.0.weight": 0}})
        'gwcnet-g'
        >>> network_of_file({"state_dict": {"feature_extraction.x": 0, "volume_postprocess.y": 0}})
        'anynet'
        >>> network_of_file({"weights": 0}) is None
        True
    """
    if not isinstance(obj, Mapping):
        return None
    nested = _tensor_dicts(obj)
    sole = [obj[nested[0]]] if len(nested) == 1 else []  # as find_state_dict takes it
    for candidate in (obj.get("model"), obj.get("state_dict"), obj, *sole):
        if isinstance(candidate, Mapping) and all(isinstance(key, str) for key in candidate):
            found = identify_network(candidate)
            if found is not None:
                return found
    return None


def load_into(
    module: Any, state_dict: Mapping[str, Any], path: str | Path, architecture: str, expected: str | None = None
) -> None:
    """Load a state dict strictly, turning key and shape mismatches into a readable error.

    Args:
        module: the network.
        state_dict: the file's weights, prefixes removed.
        path: the file, for messages.
        architecture: the network's name in messages (its registry name, in any case).
        expected: what a fitting file is, for a network whose weights no setting changes (the message then
            blames the file alone); default: a hint to check the model's settings.

    Raises:
        CheckpointError: the weights do not fit; it names the network they belong to when it is one
            rtstereo knows.
    """
    own = module.state_dict()
    # BatchNorm's num_batches_tracked buffer (PyTorch 0.4.1) is absent from older files (AnyNet's released ones) and
    # from some converted ones; it only counts training steps (used with momentum=None), and PyTorch's own
    # load_state_dict fills it in: the module's own counter is kept rather than the file refused.
    untracked = {k: own[k] for k in own if k.endswith(".num_batches_tracked") and k not in state_dict}
    missing = [k for k in own if k not in state_dict and k not in untracked]
    unexpected = [k for k in state_dict if k not in own]
    torch = require("torch", "torch", "loading a checkpoint")
    # a number or a list under a weight's name crashed the shape check below with AttributeError
    not_tensors = [
        f"{k}: {type(state_dict[k]).__name__}"
        for k in own
        if k in state_dict and not isinstance(state_dict[k], torch.Tensor)
    ]
    tensors = [k for k in own if k in state_dict and isinstance(state_dict[k], torch.Tensor)]
    wrong_shape = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in tensors
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    # integers (or complex numbers) where the network has floats loaded, cast, with their values cut
    wrong_type = [
        f"{k}: file {str(state_dict[k].dtype).removeprefix('torch.')}"
        for k in tensors
        if own[k].is_floating_point() and not state_dict[k].is_floating_point()
    ]
    if not_tensors or wrong_type:  # the file is damaged or was made wrongly, whatever the settings
        parts = [f"{len(not_tensors)} not a tensor (e.g. {'; '.join(not_tensors[:2])})"] if not_tensors else []
        if wrong_type:
            parts.append(f"{len(wrong_type)} not of a float type (e.g. {'; '.join(wrong_type[:2])})")
        raise CheckpointError(f"{path} does not hold {architecture} weights: {'; '.join(parts)}")
    if missing or unexpected or wrong_shape:
        found = identify_network(state_dict)
        if found is not None and found != architecture.lower():
            raise CheckpointError(f"{path} holds {found} weights, not {architecture}; load it with model '{found}'")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} of another shape (e.g. {'; '.join(wrong_shape[:2])})")
        if expected:  # weights that no setting changes: the file is damaged or edited
            detail = "; ".join(parts)
            raise CheckpointError(f"{path} does not hold {architecture} weights: {detail}; expected {expected}")
        raise CheckpointError(
            f"{path} does not hold {architecture} weights with these settings: "
            + "; ".join(parts)
            + ". Check the model name and its settings (for example max_disp)."
        )
    # NaN weights (a training that diverged, a conversion to fp16 that overflowed) loaded, and every map came out
    # empty (density 0 %) with no word of why.
    broken = [
        k for k in own if k in state_dict and state_dict[k].is_floating_point() and not state_dict[k].isfinite().all()
    ]
    if broken:
        raise CheckpointError(
            f"{path} holds nan or inf values in {len(broken)} of its {architecture} weights (e.g. "
            f"{', '.join(broken[:3])}): a training that diverged, or a conversion that overflowed (float16 stops at "
            "65504)"
        )
    module.load_state_dict({**state_dict, **untracked}, strict=True)


def save_checkpoint(
    path: str | Path, model: str, settings: Mapping[str, Any], state_dict: Mapping[str, Any], **extra: Any
) -> None:
    """Write rtstereo's self-describing checkpoint (architecture name and settings with the weights)."""
    torch = require("torch", "torch", "saving a checkpoint")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_TAG,
        "version": 1,
        "model": model,
        "settings": dict(settings),
        "state_dict": dict(state_dict),
        **extra,
    }
    # Hidden and tagged with the writer (removed by the next run's remove_stale_partials if this one is killed):
    # "w.pt.tmp" replaced a file of that name, and a killed run left it beside the checkpoint.
    tmp = partial_path(path)
    try:
        # Opened here, so that a place that cannot be written raises OSError (torch.save's own open
        # raises RuntimeError), and the partial file goes away with a failure.
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
        tmp.replace(path)  # atomic: an interrupted save never leaves a truncated checkpoint
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def describe(obj: Any) -> tuple[str, dict[str, Any]] | None:
    """``(model, settings)`` of a self-describing checkpoint, or ``None`` for any other file."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT_TAG:
        return str(obj["model"]), dict(obj.get("settings", {}))
    return None


class NotSelfDescribing(CheckpointError):
    """A file given as the model that does not name its model (a published network's own checkpoint)."""

    def __init__(self, message: str, network: str | None) -> None:
        super().__init__(message)
        self.network = network  # the registry name of the network whose weights it holds, when rtstereo knows it


def read_self_describing(
    path: str | Path, known: str, unknown: str, what: str = "model file"
) -> tuple[Any, tuple[str, dict[str, Any]]]:
    """An rtstereo checkpoint given as the model: its contents and ``(model, settings)``.

    Args:
        path: the file.
        known: what to do instead when the file holds the weights of a network rtstereo knows, as a template of
            ``{network}`` (its registry name) and ``{path}``.
        unknown: what to do instead when it holds weights of no network rtstereo knows.
        what: what the caller gave the file as, for the errors of :func:`read_torch_file`.

    Raises:
        CheckpointError: the file is missing or damaged (:func:`read_torch_file`).
        NotSelfDescribing: it does not name its model; the message names the network whose weights it holds and
            what to do (``known`` or ``unknown``).
    """
    obj = read_torch_file(path, what)
    description = describe(obj)
    if description is None:
        network = network_of_file(obj)
        how = known.format(network=network, path=str(path)) if network else unknown
        raise NotSelfDescribing(f"{path} is not an rtstereo checkpoint (it does not name its model); {how}", network)
    return obj, description


def read_checkpoint_of(path: str | Path, architecture: str) -> tuple[Any, tuple[str, dict[str, Any]] | None]:
    """A weights file for ``architecture``: its contents and, for an rtstereo checkpoint, ``(model, settings)``.

    Raises:
        CheckpointError: the file is missing or damaged (:func:`read_torch_file`), or is an rtstereo
            checkpoint of another network.
    """
    obj = read_torch_file(path)
    described = describe(obj)
    if described is not None and described[0] != architecture:
        raise CheckpointError(
            f"{path} is an rtstereo checkpoint of '{described[0]}', but the network is "
            f"'{architecture}'; load it with model '{described[0]}'"
        )
    return obj, described
