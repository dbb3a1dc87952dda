"""Training configuration: one dataclass, read from YAML or JSON and overridden by command-line flags.

Precedence, lowest first: the defaults below, the config stored in a checkpoint being resumed, a
config file, then flags given on the command line. The resolved config is written next to the
checkpoints (``config.json``) and stored inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, MissingDependencyError, RtStereoError, SettingError
from ..models import PACKAGED_SOURCES, get_spec, packaged_network_source

PRECISIONS = ("auto", "off", "bf16", "fp16")
# "fp32", the other verbs' word for no reduced precision, is "off"; so is YAML 1.1's reading of `precision: off`, false
PRECISION_ALIASES = {"fp32": "off", False: "off"}
SEED_LIMIT = 1 << 30  # run seeds from 0 to this - 1 give distinct training streams
LOSS_REGIONS = ("all", "matchable")  # the pixels of the loss: rtstereo.train.losses.training_mask
# The keys that name files or folders: each takes a file:// URL as the path it names, as the command line's -o does
PATH_KEYS = ("out_dir", "init", "resume", "data", "unlabeled", "val_data")


class ConfigSettingError(SettingError):
    """A training option out of its range, by its config key; ``rtstereo train`` names the flag instead when the
    value came from one (``--steps: ...`` rather than ``training config 'steps': ...``).

    Examples:
        >>> str(ConfigSettingError("steps", "expected a positive whole number, got 0"))
        "training config 'steps': expected a positive whole number, got 0"
    """

    source: str | None = None  # set by config_from_dict: "config file", "command line", ...

    def __str__(self) -> str:
        return f"training config '{self.setting}': {self.detail}"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        out_dir: folder for checkpoints (``last.pt``, ``best.pt``), ``log.jsonl`` and ``curve.png``.
        model: registry name of the network to train.
        settings: the network's settings (e.g. ``{"max_disp": 192}``); missing ones take defaults.
        init: checkpoint to start from (fine-tuning: weights only, step 0, fresh optimiser); its
            architecture and settings replace ``model``, and ``settings`` given here change them (a
            setting that adds a module, e.g. rtnet's ``half_refinement``, starts that module fresh).
        resume: checkpoint of an interrupted run to continue (weights, optimiser, step, best score).
        data: a dataset folder with ground truth to train on (any layout ``rtstereo eval`` reads);
            ``None`` trains on synthetic scenes rendered on the fly.
        unlabeled: a folder of real pairs without ground truth (leaf folders holding two images) mixed
            into every batch of rendered scenes, labelled by SGBM where its left-right check holds
            (:mod:`rtstereo.train.proxy`); ``None``: rendered scenes only.
        unlabeled_per_batch: pairs of each batch from ``unlabeled`` (0: a quarter of the batch, rounded down, at
            least 1).
        noise_scale: sensor noise of the rendered training and validation scenes, as a multiple of
            the generator's (:class:`~rtstereo.datasets.synthetic.RenderSettings`); 1 keeps it.
        data_max_disp: largest disparity of the rendered training and validation scenes, pixels
            (``None``: the network's ``max_disp``); lower it for small crops, where a full-range
            disparity would hide most of the right view.
        steps: total optimiser steps of the run (a resumed run continues up to this).
        batch_size: pairs per step.
        crop_hw: training crop ``(height, width)``, pixels; multiples of the model's size divisor.
        lr: peak learning rate (AdamW), reached after ``warmup_steps``, then cosine decay to 5 %.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up length.
        loss_weights: weight of each prediction the network returns in training mode, coarse to fine.
        loss_region: pixels the loss and the validation score: ``all`` with valid ground truth, or
            ``matchable`` (leaves out each row's left band, whose match falls outside the right image).
        grad_clip: largest gradient norm (0 = no clipping).
        seed: seed of the weights' initialisation and of the training stream (scenes, crops).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto`` (bf16 on CUDA GPUs that have it, fp16 on older GPUs, fp32 on CPUs),
            ``off`` (fp32; ``fp32`` is taken for it, as the other verbs name it), ``bf16`` (autocast, CPU or CUDA)
            or ``fp16`` (CUDA only).
        threads: CPU threads for torch (0 = torch's default).
        checkpoint_every: steps between writes of ``last.pt``.
        checkpoint_minutes: also write ``last.pt`` when this many minutes have passed since the last
            timed write (0: by steps only); for short sessions on a borrowed machine.
        time_limit_min: stop after this many minutes of training (0: no limit), at the next log step:
            validate, write ``last.pt`` and end as if ``steps`` were reached (resume continues).
        val_every: steps between validations (and ``best.pt`` updates).
        val_size: pairs in the fixed synthetic validation set.
        val_hw: ``(height, width)`` of the validation pairs.
        val_seed: seed of the validation set (distinct from any training stream).
        val_data: a dataset folder to validate on instead of the synthetic set (full images).
        log_every: steps between training log lines.
        freeze: parameter-name prefixes (e.g. ``encoder``) whose weights stay fixed: no gradient, and
            their batch-norm statistics stay as loaded; the rest trains.
        compile: run the network through ``torch.compile`` (slow to start; see the README for what
            it gains on a CPU and a GPU).
        prefetch: make the next batch in a background thread while a step trains (``None``: on CUDA
            devices and in data-parallel runs; see :func:`~rtstereo.train.prefetch.prefetch_wanted`).
    """

    out_dir: str = "runs/rtnet"
    model: str = "rtnet"
    settings: Mapping[str, Any] = field(default_factory=dict)
    init: str | None = None
    resume: str | None = None
    data: str | None = None
    data_max_disp: float | None = None
    unlabeled: str | None = None
    unlabeled_per_batch: int = 0
    noise_scale: float = 1.0
    steps: int = 100_000
    batch_size: int = 8
    crop_hw: tuple[int, int] = (256, 512)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    loss_weights: tuple[float, ...] = (0.5, 1.0)
    loss_region: str = "all"
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    precision: str = "auto"
    threads: int = 0
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 0.0
    time_limit_min: float = 0.0
    val_every: int = 1000
    val_size: int = 16
    val_hw: tuple[int, int] = (256, 512)
    val_seed: int = 20_240_917
    val_data: str | None = None
    log_every: int = 50
    freeze: tuple[str, ...] = ()
    compile: bool = False
    prefetch: bool | None = None

    def __post_init__(self) -> None:
        # Normalise types coming from JSON/YAML (lists) so that equal configs compare equal.
        object.__setattr__(self, "settings", dict(self.settings or {}))
        for name in ("crop_hw", "val_hw"):
            object.__setattr__(self, name, _size_pair(name, getattr(self, name)))
        object.__setattr__(self, "loss_weights", _weights(self.loss_weights))
        object.__setattr__(self, "freeze", _prefixes(self.freeze))
        if isinstance(self.precision, (str, bool)):
            object.__setattr__(self, "precision", PRECISION_ALIASES.get(self.precision, self.precision))
        for name in ("out_dir", "model", "device"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigSettingError(name, f"expected a non-empty text, got {value!r}")
        for name in ("init", "resume", "data", "unlabeled", "val_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigSettingError(name, f"expected a path (text) or null, got {value!r}")
        for name in PATH_KEYS:
            object.__setattr__(self, name, local_path(name, getattr(self, name)))
        for name in ("steps", "batch_size", "checkpoint_every", "val_every", "val_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigSettingError(name, f"expected a positive whole number, got {value!r}")
        for name in ("warmup_steps", "threads", "seed", "val_seed", "unlabeled_per_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigSettingError(name, f"expected a whole number >= 0, got {value!r}")
        if self.seed >= SEED_LIMIT:  # rtstereo.train.loop.stream_seed keeps 30 bits of it
            raise ConfigSettingError(
                "seed",
                f"expected a whole number below 2^30 ({SEED_LIMIT}), got {self.seed}: the training scenes of seed "
                f"s + 2^30 are those of seed s",
            )
        for name in ("lr", "weight_decay", "grad_clip", "noise_scale", "checkpoint_minutes", "time_limit_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigSettingError(name, f"expected a finite number >= 0, got {value!r}")
        if self.data_max_disp is not None and (
            isinstance(self.data_max_disp, bool)
            or not isinstance(self.data_max_disp, (int, float))
            or not 0 < self.data_max_disp < math.inf
        ):
            raise ConfigSettingError("data_max_disp", f"expected pixels > 0 (or null), got {self.data_max_disp!r}")
        if not isinstance(self.compile, bool):
            raise ConfigSettingError("compile", f"expected true or false, got {self.compile!r}")
        if self.prefetch is not None and not isinstance(self.prefetch, bool):
            raise ConfigSettingError("prefetch", f"expected true, false or null (auto), got {self.prefetch!r}")
        if not self.lr > 0:
            raise ConfigSettingError("lr", f"expected a learning rate > 0, got {self.lr!r}")
        if self.precision not in PRECISIONS:
            raise ConfigSettingError("precision", f"expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.loss_region not in LOSS_REGIONS:
            raise ConfigSettingError(
                "loss_region", f"expected one of {', '.join(LOSS_REGIONS)}, got {self.loss_region!r}"
            )
        if self.unlabeled and self.data:
            raise InputError("training config: 'unlabeled' pairs are mixed into rendered scenes, not into 'data'")
        if self.unlabeled and self.unlabeled_share >= self.batch_size:
            if not self.unlabeled_per_batch:  # the default share: the batch is what was given, not the share
                raise ConfigSettingError(
                    "batch_size",
                    f"{self.batch_size} leaves no rendered scene beside the unlabeled pair each batch takes (a quarter "
                    "of the batch, at least 1): give a batch of 2 or more",
                )
            raise ConfigSettingError(
                "unlabeled_per_batch",
                f"{self.unlabeled_share} of a batch of {self.batch_size} "
                "leaves no rendered scene; lower it or raise the batch size",
            )
        if self.init and self.resume:
            raise InputError(
                "training config: give either 'init' (start a new run from weights) or 'resume' (continue "
                "a run), not both"
            )

    @property
    def unlabeled_share(self) -> int:
        """Pairs of each batch from ``unlabeled`` (0 without it)."""
        if not self.unlabeled:
            return 0
        return self.unlabeled_per_batch or max(1, self.batch_size // 4)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["settings"] = dict(self.settings)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def local_path(name: str, value: str | None) -> str | None:
    """A path key's value (:data:`PATH_KEYS`): a ``file://`` URL as the path it names, as the command line's ``-o``
    takes one (``out_dir: file:///data/run`` made a folder named ``file:``; ``data: file:///...`` was not found).

    Raises:
        ConfigSettingError: a web URL, or a file URL of another host: training reads and writes local files.

    Examples:
        >>> local_path("data", "file:///data/my%20set"), local_path("data", "kitti/"), local_path("init", None)
        ('/data/my set', 'kitti/', None)
    """
    from ..io.download import file_url_path, is_url

    if value is None or not is_url(value):
        return value
    path = file_url_path(value)
    if path == "":
        raise ConfigSettingError(name, f"{value}: the URL names no path: give a path (or a file:///path URL)")
    if path is None or urllib.parse.urlparse(value).netloc.lower() not in ("", "localhost"):
        raise ConfigSettingError(
            name, f"{value}: training reads and writes local files, not URLs: give a path (or a file:///path URL)"
        )
    return path


def config_from_dict(values: Mapping[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
    """``base`` (default: the defaults) updated by ``values``; unknown keys fail with close matches.

    Args:
        values: field name -> value; ``None`` values are skipped (so unset flags change nothing).
        base: the config to update.
        source: where the values come from, for messages.
    """
    base = base or TrainConfig()
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(f"{source}: unknown training option '{key}'{hint} (known: {', '.join(FIELDS)})")
        if value is None:
            continue
        if name == "settings":
            if not isinstance(value, Mapping):
                raise InputError(f"{source}: 'settings' must be a mapping of model settings, got {value!r}")
            value = {**base.settings, **value}
        changes[name] = value
    try:
        return dataclasses.replace(base, **changes)
    except ConfigSettingError as exc:
        exc.source = source  # which values were refused: the CLI names a flag only for its own
        raise
    except TypeError as exc:  # a value of a type the validation cannot even compare
        raise InputError(f"{source}: {exc}") from None


def _one_line(exc: Exception) -> str:
    """A parser's error on one line: YAML's spans several (the context, the line quoted, a caret)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem is not None and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file.

    Raises:
        InputError: missing file, a syntax error, or a top level that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training config file {'is a folder, not a file' if path.is_dir() else 'not found'}: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the training config as UTF-8 text ({exc})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            values = _load_yaml(text)
        else:
            values = json.loads(text, object_pairs_hook=_without_repeated_keys)
    except ImportError as exc:  # the extra that has it, as for every optional dependency
        raise MissingDependencyError(
            f"{path}: reading a YAML training config needs the Python package 'yaml' (PyYAML), which is not "
            f"installed ({exc.__class__.__name__}: {exc}). Install it with: pip install 'rtstereo[torch]', or give a "
            ".json file"
        ) from None
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        raise InputError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {_one_line(exc)}") from None
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InputError(
            f"{path}: expected a mapping of training options at the top level, got {type(values).__name__}"
        )
    return dict(values)


def _load_yaml(text: str) -> Any:
    """The document in YAML ``text``, with numbers as YAML 1.2 reads them.

    PyYAML follows YAML 1.1, where a float needs a dot: ``lr: 1e-3`` was the text ``'1e-3'`` and refused,
    although ``--lr 1e-3`` is taken. Quoted values stay text.

    Examples:
        >>> _load_yaml("lr: 1e-3\\nwarmup_steps: 5\\nname: '1e-3'")
        {'lr': 0.001, 'warmup_steps': 5, 'name': '1e-3'}
    """
    import yaml  # PyYAML: part of the training extra

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # A key given twice was taken from its last line without a word: one of the two values is a mistake.
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`, whose keys the mapping may override
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"'{key}' is given twice, the second time", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # What YAML 1.1 leaves as text: an exponent without a dot before it (1e-3) or without a sign (1.5e3).
    exponent = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)  # a SafeLoader: no Python objects


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (``json`` keeps the last one without a word).

    Examples:
        >>> _without_repeated_keys([("steps", 3), ("lr", 0.1)])
        {'steps': 3, 'lr': 0.1}
    """
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise ValueError(f"'{key}' is given twice")
        values[key] = value
    return values


MIN_SIDE_PX = 16


def _size_pair(name: str, value: Any) -> tuple[int, int]:
    given = value  # for the message: "3", as typed, not the (3,) it was parsed into
    if isinstance(value, str):  # "256x512" (height x width), as on the command line
        parts = value.lower().split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            value = parts
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ConfigSettingError(name, f"expected (height, width) in pixels, e.g. 256x512, got {given!r}")
    if min(value) < MIN_SIDE_PX:  # the renderer's smallest scene, and well below any network's size divisor
        raise ConfigSettingError(
            name, f"at least {MIN_SIDE_PX} px each way, got {value[0]}x{value[1]} (height x width)"
        )
    return int(value[0]), int(value[1])


def _weights(value: Any) -> tuple[float, ...]:
    given = value  # for the messages: "a,b" as typed
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str):
        value = value.split(",")
    try:
        weights = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigSettingError("loss_weights", f"expected numbers, e.g. 0.5,1.0, got {given!r}") from None
    if not weights or not all(0 <= w < math.inf for w in weights) or not any(w > 0 for w in weights):
        raise ConfigSettingError("loss_weights", f"expected finite non-negative numbers, not all 0, got {given!r}")
    return weights


def _prefixes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigSettingError("freeze", f"expected parameter-name prefixes, e.g. encoder,aggregation, got {value!r}")
    return tuple(v.strip() for v in value)


def resolve_config(
    file_values: Mapping[str, Any] | None = None, flag_values: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The config of a run: defaults < a resumed checkpoint's config < config file < flags.

    Args:
        file_values: options from a config file (:func:`read_config_file`).
        flag_values: options given on the command line (``None`` = not given).

    Returns:
        The resolved config. When resuming, the checkpoint's own config is the base, so a resumed
        run needs no options repeated; it writes beside the checkpoint unless ``out_dir`` is given, and
        its ``prefetch`` follows the device again unless given.
    """
    file_values = dict(file_values or {})
    flag_values = {k: v for k, v in (flag_values or {}).items() if v is not None}
    resume = flag_values.get("resume") or file_values.get("resume")
    base = TrainConfig()
    if resume is not None and not isinstance(resume, str):
        raise ConfigSettingError("resume", f"expected a path (text) or null, got {resume!r}")
    resume = local_path("resume", resume)
    if resume:
        from ..models.checkpoint import read_torch_file

        if not Path(resume).exists():
            refuse_registry_name(resume)
        stored = read_torch_file(resume)
        stored_config = stored.get("config") if isinstance(stored, Mapping) else None
        if isinstance(stored_config, Mapping):
            base = config_from_dict(stored_config, source=f"config stored in {resume}")
            # A resumed run writes beside its checkpoint, wherever the run folder has moved to; whether it
            # makes batches ahead follows the machine it runs on now (a GPU's run resumed on a CPU).
            base = base.replace(init=None, out_dir=str(Path(resume).parent), prefetch=None)
    config = config_from_dict(file_values, base, source="config file")
    return config_from_dict(flag_values, config, source="command line")


def refuse_registry_name(name: str) -> None:
    """Refuse a registry name where a checkpoint file is wanted, saying where its weights are (it read "weights
    file not found: rtnet-v5")."""
    try:
        spec = get_spec(name)
    except RtStereoError:  # no registry name either: "weights file not found" says it
        return
    source = packaged_network_source(spec.name) if spec.name in PACKAGED_SOURCES else None
    where = f": {spec.name}'s PyTorch state is {source}" if source is not None else ""
    raise CheckpointError(
        f"{name} is a registry name, not a checkpoint file; --init and --resume take checkpoints written by "
        f"`rtstereo train` or `rtstereo adapt`{where}"
    )
