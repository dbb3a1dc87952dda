"""The training loop behind ``rtstereo train``: data stream, optimiser, validation, checkpoints, logs.

A run folder holds::

    last.pt      latest state (every ``checkpoint_every`` steps, at the end, on Ctrl-C or a crash)
    best.pt      the weights with the lowest validation EPE so far
    log.jsonl    one JSON object per line: {"kind": "start"|"train"|"val"|"end", "step": ..., ...}
    curve.png    training loss and validation EPE / bad-2 against steps
    config.json  the resolved configuration

Checkpoints are rtstereo's self-describing format (architecture name and settings beside the weights),
plus the optimiser state, the step and the config, so ``--resume last.pt`` continues exactly where the
run stopped and ``--init best.pt`` fine-tunes without architecture flags. Training batch ``s`` depends
only on ``(seed, s)``, so a resumed run sees the same data an uninterrupted one would have.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, DatasetError, InputError, OutputError, RtStereoError, SettingError, warn
from ..io.atomic import (
    atomic_path,
    folder_write_problem,
    interruption_cause,
    interrupts_deferred,
    not_a_folder,
    os_reason,
    remove_stale_partials,
    terminate_as_interrupt,
)
from ..io.lock import FileLock, holder_text
from ..models.checkpoint import (
    FORMAT_TAG,
    describe,
    find_state_dict,
    load_into,
    read_torch_file,
    save_checkpoint,
    strip_prefix,
)
from ..models.registry import ModelSpec, get_spec, import_object
from ..runtime.backends import check_gpu_index, cpu_build_note
from ..runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD
from ..text import counted, duration
from . import distributed
from .augment import augment_batch, random_crop, say_padded_crops
from .config import ConfigSettingError, TrainConfig, refuse_registry_name
from .distributed import global_batch_index, ranks_from_environment, training_device
from .losses import batch_errors, check_weight_count, summarize_errors, training_mask, valid_mask
from .prefetch import Prefetcher, prefetch_wanted
from .step import TrainStep, learning_rate, make_optimizer

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class RunFiles:
    """The files of a run folder."""

    folder: Path

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def log(self) -> Path:
        return self.folder / "log.jsonl"

    @property
    def curve(self) -> Path:
        return self.folder / "curve.png"

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def lock(self) -> Path:
        """Held while a run trains in the folder (see :mod:`rtstereo.io.lock`; a killed run's never blocks)."""
        return self.folder / ".rtstereo-train.lock"

    def check_usable(self, resume: str | None = None) -> None:
        """Refuse a folder that cannot be made or written in, or one holding the files of another run than
        ``resume``'s (it is not made here).

        Args:
            resume: the checkpoint a resumed run continues (``None``: a new run); its own folder holds its run.

        Raises:
            OutputError: the folder (or a folder above it) is a file, files cannot be written in it, another run
                trains in it now, or the run would overwrite the checkpoints and extend the log of another run already
                there.
        """
        existing = next((p for p in (self.folder, *self.folder.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise OutputError(f"run folder {self.folder}: {not_a_folder(existing)}")
        # Now, not once the validation set is rendered and unlabeled pairs are labelled (minutes), as make() found it.
        problem = folder_write_problem(self.folder)
        if problem is not None:
            raise OutputError(f"cannot write in run folder {self.folder}: {problem}")
        if self.folder.is_dir():  # a run training there now, resumed from its own last.pt, passes the check below
            probe = FileLock(self.lock)
            try:
                free = probe.acquire()
            except OSError:
                free = True  # written above: the lock is taken (or refused in words) when the folder is made
            probe.release()
            if not free:
                raise self._in_use(probe)
        self._refuse_another_run(resume)

    def _refuse_another_run(self, resume: str | None) -> None:
        held = [f.name for f in (self.last, self.best, self.log) if f.exists()]
        if resume is not None and held:
            source = Path(resume).parent
            if self.folder.is_dir() and source.is_dir() and self.folder.samefile(source):
                return  # continues the log and checkpoints of the run it names
            # -o another run's folder: its checkpoints were overwritten and its log extended with this run's steps.
            raise OutputError(
                f"run folder {self.folder} already holds another run ({', '.join(held)}) than the one of {resume}; "
                f"resuming into it would overwrite it: leave out -o to continue in {source}, give an empty "
                "folder with -o, or remove that one"
            )
        if held:
            # A run stopped before its first last.pt (killed: SIGKILL, a lost machine) has its best.pt, which
            # resumes too, at the step it was validated.
            start = next((f for f in (self.last, self.best) if f.exists()), None)
            advice = f"continue it with --resume {start}, " if start is not None else ""
            raise OutputError(
                f"run folder {self.folder} already holds a run ({', '.join(held)}); a new run would overwrite it: "
                f"{advice}give another folder with -o, or remove that one"
            )

    def make(self, resume: str | None = None) -> FileLock:
        """Create the folder (and those above it) and lock it for this run, which releases the lock when it ends.

        Raises:
            OutputError: the folder cannot be made, another run trains in it, or one has started there since
                :meth:`check_usable` (two runs started at once into one folder both passed it).
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.lock)
            free = lock.acquire()
        except OSError as exc:
            # under a file it said "File exists", of a folder that is not there
            raise OutputError(f"cannot make run folder {self.folder}: {os_reason(exc, self.folder / 'x')}") from None
        if not free:
            raise self._in_use(lock)
        try:
            self._refuse_another_run(resume)
        except BaseException:
            lock.release()
            raise
        remove_stale_partials(self.folder)  # checkpoints a killed run left half-written (save_checkpoint's)
        return lock

    def _in_use(self, lock: FileLock) -> OutputError:
        # Both wrote last.pt, best.pt and log.jsonl: each run's checkpoints replaced the other's, their steps mixed.
        return OutputError(
            f"run folder {self.folder} is in use by another training run ({holder_text(lock.holder())}): wait for it "
            "to end, or give another folder with -o"
        )


# ------------------------------------------------------------------------------- device, precision
def resolve_device(name: str) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N`` as a torch device that exists here."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    # in predict's words: synth, train and adapt had their own ("training runs on cpu or cuda" for synth's mps)
    if device is None or device.type not in ("cpu", "cuda"):
        raise InputError(f"device must be cpu or cuda[:N], got '{name}'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device '{name}' requested but torch sees no CUDA GPU here{cpu_build_note(torch)}; use --device cpu"
        )
    check_gpu_index(torch, device)
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (``None`` = fp32).

    ``auto`` picks bf16 on GPUs that have it (compute capability 8 and up), fp16 on older GPUs, and
    fp32 on CPUs: with torch 2.13 on an AVX512-BF16 CPU, bf16 autocast trained no faster than fp32
    for rtnet and gave non-finite weight gradients in about one step in ten (those steps are
    skipped when bf16 is asked for explicitly).
    """
    if precision == "off":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise InputError("precision fp16 needs a CUDA device; on CPUs use bf16 or off (fp32)")
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        # Not torch.cuda.is_bf16_supported(): it asks the current GPU, not this one, and is true on older GPUs too,
        # where bf16 is emulated (slowly)
        native_bf16 = torch.version.hip is not None or torch.cuda.get_device_capability(device)[0] >= 8
        return torch.bfloat16 if native_bf16 else torch.float16
    return None


def normalize_images(rgb: torch.Tensor, mode: str) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in 0..1 to network input, as the model spec's normalisation says."""
    if mode == "imagenet":
        mean = torch.as_tensor(IMAGENET_MEAN, device=rgb.device).view(1, 3, 1, 1)
        std = torch.as_tensor(IMAGENET_STD, device=rgb.device).view(1, 3, 1, 1)
        return (rgb - mean) / std
    if mode == "raw255":
        return rgb * 255.0
    if mode in ("unit", "none"):
        return rgb
    raise InputError(f"unknown normalization '{mode}' (expected imagenet, raw255 or unit)")


# --------------------------------------------------------------------------------------- data
def stream_seed(seed: int, step: int) -> int:
    """Seed of training batch ``step``, distinct for every ``(seed, step)`` with ``seed < 2**30``.

    Bit 47 is set, so training seeds never equal a validation seed below 2**47; the step takes bits
    0-31 and the run seed bits 32-46 and, above 32 767, 48-62 (the renderer keeps 63 bits of a seed).
    """
    seed = int(seed)
    return ((seed >> 15) & 0x7FFF) << 48 | (1 << 47) | ((seed & 0x7FFF) << 32) | (int(step) & 0xFFFFFFFF)


def render_settings(config: TrainConfig):
    """How the run's synthetic scenes are rendered, for training and validation alike."""
    from ..datasets.synthetic import RenderSettings

    return RenderSettings(noise_scale=config.noise_scale)


class SyntheticStream:
    """Training batches rendered on the fly on the training device; batch ``s`` is fixed by ``(seed, s)``."""

    def __init__(self, config: TrainConfig, device: torch.device, max_disp: float):
        """``max_disp``: largest disparity of the rendered scenes, pixels."""
        from ..datasets.synthetic import render_batch

        self.render = render_batch
        self.config, self.device, self.max_disp = config, device, max_disp
        self.settings = render_settings(config)

    def describe(self) -> str:
        height, width = self.config.crop_hw
        noise = f", sensor noise x{self.config.noise_scale:g}" if self.config.noise_scale != 1 else ""
        return f"synthetic scenes {height}x{width} up to {self.max_disp:g} px{noise}, augmented"

    def __call__(self, step: int) -> Batch:
        seed = stream_seed(self.config.seed, step)
        height, width = self.config.crop_hw
        batch = self.render(
            self.config.batch_size,
            height,
            width,
            seed=seed,
            device=self.device,
            max_disp_px=float(self.max_disp),
            settings=self.settings,
        )
        return augment_batch(batch, torch.Generator().manual_seed(seed), self.config.crop_hw)


class FolderStream:
    """Random crops of the pairs of a dataset folder (any layout ``rtstereo.datasets.find_samples`` reads).

    Pixels without ground truth get disparity 0 (not learned from); crops larger than an image are
    padded with zeros, which are invalid too.
    """

    def __init__(self, config: TrainConfig, device: torch.device, max_disp: float = math.inf):
        """``max_disp``: the network's disparity range, pixels; the loss leaves out labels beyond it."""
        from ..datasets import find_samples

        found = find_samples(config.data)
        self.samples = usable_samples(found, config.data)
        if not self.samples:
            # Real pairs without ground truth (a Middlebury test folder) have a place: say which.
            without = sum(1 for s in found if s.problem is None and s.gt_path is None)
            hint = (
                f": its {counted(without, 'pair')} without it can train as --unlabeled pairs, which SGBM labels, mixed "
                "into rendered scenes"
                if without
                else ""
            )
            raise DatasetError(f"no pairs with ground-truth disparity under {config.data}; --data needs it{hint}")
        self.config, self.device, self.max_disp = config, device, max_disp
        self._padding_said = False
        self._unlabelled_said: set[str] = set()
        self._unreadable: dict[int, str] = {}  # pairs left out of the run when they could not be read: why
        self._beyond_said = False

    def describe(self) -> str:
        height, width = self.config.crop_hw
        return f"{len(self.samples)} pairs from {self.config.data}, crops {height}x{width}, augmented"

    def _load(self, index: int):
        sample = self.samples[index]
        try:
            loaded = load_same_size(sample)
        except RtStereoError as exc:  # a damaged file of the data set, not a setting of the run
            raise DatasetError(f"training pair {sample.name}: {exc}") from None
        if not self._padding_said:
            self._padding_said = say_padded_crops([(sample.name, loaded[0].shape[:2])], self.config.crop_hw)
        gt, said = loaded[2], self._unlabelled_said
        if len(said) < 3 and sample.name not in said:
            known = np.isfinite(gt) & (gt > 0)
            if not known.any():
                why = "has no known disparity above 0 (0 or unknown everywhere, or negative: x_right - x_left?)"
            elif not (gt[known] < self.max_disp).any():
                why = f"has no known disparity inside the network's range (below {self.max_disp:g} px)"
            else:
                self._say_labels_beyond(sample.name, gt[known])
                return loaded
            said.add(sample.name)  # its loss is 0: without a word, a run on such maps learns nothing
            warn(
                f"training pair {sample.name}: its ground truth {sample.gt_path} {why}, so it teaches nothing"
                + ("; further such pairs are not named" if len(said) == 3 else "")
            )
        return loaded

    def _say_labels_beyond(self, name: str, known_px: np.ndarray) -> None:
        """Warn once a run when a pair has labels at or beyond the network's range: the loss leaves them out."""
        beyond = int((known_px >= self.max_disp).sum())
        if self._beyond_said or not beyond:
            return
        self._beyond_said = True
        warn(
            f"training pair {name}: {100 * beyond / known_px.size:.1f} % of its known disparities lie at or beyond "
            f"the network's range ({self.max_disp:g} px), which the loss leaves out, in this pair and every other"
        )

    def _readable(self, index: int):
        """Pair ``index`` loaded or, when it cannot be read (a damaged file, maps of another size), the next pair
        that can: one bad file stopped a run of days midway. Each is named once and left out from then on; which
        pair stands in depends only on which are unreadable, so a resumed run trains on the same crops.

        Raises:
            DatasetError: no pair of the folder can be read (the first one's reason).
        """
        count = len(self.samples)
        for candidate in ((index + offset) % count for offset in range(count)):
            if candidate in self._unreadable:
                continue
            try:
                return self._load(candidate)
            except DatasetError as exc:
                self._unreadable[candidate] = str(exc)
                if len(self._unreadable) < count:
                    warn(f"{exc}; left out of this run, its crops taken from the next pair")
        raise DatasetError(
            f"{self._unreadable[min(self._unreadable)]}; no training pair under {self.config.data} can be read"
        )

    def __call__(self, step: int) -> Batch:
        rng = np.random.default_rng([self.config.seed, step])
        picks = rng.integers(len(self.samples), size=self.config.batch_size)
        crops = [random_crop(*self._readable(int(i)), self.config.crop_hw, rng) for i in picks]
        batch = {key: torch.stack([c[key] for c in crops]).to(self.device) for key in crops[0]}
        return augment_batch(
            batch, torch.Generator().manual_seed(stream_seed(self.config.seed, step)), self.config.crop_hw
        )


def load_same_size(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``sample.load()``, refusing maps of another size than the left image: they were cropped at one window
    all the same, and failed mid-run in ``torch.stack`` (a traceback) or in the network, naming no file.

    Raises:
        DatasetError: naming the file of another size and both sizes (HxW).
    """
    left, right, gt, nonocc = loaded = sample.load()
    for what, path, array in (
        ("right image", sample.right_path, right),
        ("ground truth", sample.gt_path, gt),
        ("mask", sample.nonocc_path, nonocc),
    ):
        if array is not None and array.shape[:2] != left.shape[:2]:
            raise DatasetError(
                f"{what} {path} is {array.shape[0]}x{array.shape[1]} but the left image {sample.left_path} is "
                f"{left.shape[0]}x{left.shape[1]} (HxW): they must be the same size"
            )
    return loaded


def usable_samples(samples: list, folder: str | Path) -> list:
    """The samples of a folder that have ground truth and no known problem; those left out for a
    problem (a missing right image, a damaged ``calib.txt``) or for want of ground truth are named in a
    warning, not met mid-run nor dropped unsaid."""
    broken = [s for s in samples if s.problem is not None]
    if broken:
        warn(f"{folder}: {counted(len(broken), 'pair')} left out: {_some_names(broken)} ({broken[0].problem})")
    unlabelled = [s for s in samples if s.problem is None and s.gt_path is None]
    usable = [s for s in samples if s.problem is None and s.gt_path is not None]
    if unlabelled and usable:  # none usable at all: the caller's error says so
        warn(f"{folder}: {counted(len(unlabelled), 'pair')} without ground truth left out: {_some_names(unlabelled)}")
    return usable


def _some_names(samples: list) -> str:
    """The names of the first five samples, and how many more."""
    more = f" and {len(samples) - 5} more" if len(samples) > 5 else ""
    return ", ".join(s.name for s in samples[:5]) + more


class FolderValidation:
    """The pairs of a ``val_data`` folder as batches of one, read at each validation: held for the whole run,
    a KITTI training split took 2.6 GB (on the training device), SceneFlow's test set more than a GPU has."""

    def __init__(self, samples: list, device: torch.device):
        self.samples, self.device = samples, device

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Batch]:
        for sample in self.samples:
            try:
                left, right, gt, _ = load_same_size(sample)
            except RtStereoError as exc:  # a damaged file of the data set, not a setting of the run
                raise DatasetError(f"validation pair {sample.name}: {exc}") from None
            yield {
                "left": torch.from_numpy(left).permute(2, 0, 1)[None].float().div(255.0).to(self.device),
                "right": torch.from_numpy(right).permute(2, 0, 1)[None].float().div(255.0).to(self.device),
                "disparity": torch.from_numpy(np.ascontiguousarray(gt, np.float32))[None].to(self.device),
            }


def validation_batches(config: TrainConfig, device: torch.device, max_disp: float) -> Iterable[Batch]:
    """The fixed validation set: synthetic pairs from ``val_seed``, or every pair of ``val_data``
    (:class:`FolderValidation`, read when iterated)."""
    if config.val_data:
        from ..datasets import find_samples

        samples = usable_samples(find_samples(config.val_data), config.val_data)
        if not samples:
            raise DatasetError(f"no pairs with ground-truth disparity under {config.val_data} to validate on")
        return FolderValidation(samples, device)
    from ..datasets.synthetic import SyntheticStereo

    # Item i depends only on (val_seed, i): the set is the same whatever the batch size, across resumes.
    items = SyntheticStereo(
        config.val_size,
        *config.val_hw,
        seed=config.val_seed,
        max_disp_px=float(max_disp),
        settings=render_settings(config),
    )
    batches = []
    for start in range(0, config.val_size, config.batch_size):
        chunk = [items[i] for i in range(start, min(start + config.batch_size, config.val_size))]
        batches.append({k: torch.stack([item[k] for item in chunk]).to(device) for k in ("left", "right", "disparity")})
    return batches


def _check_scored_pixels(batches: Iterable[Batch], max_disp: float, config: TrainConfig) -> None:
    """Refuse a ``val_data`` folder none of whose pixels would be scored (ground truth 0 or unknown everywhere,
    or outside the network's range): it scored an EPE of 0 at every validation, which no step could beat.
    Reading every pair, it also refuses a damaged one before the run rather than at its first validation."""
    pairs, scored, known, beyond = 0, 0, 0, 0
    for batch in batches:
        gt, pairs = batch["disparity"], pairs + 1
        scored += int(training_mask(gt, max_disp, config.loss_region).sum())
        labelled = valid_mask(gt, math.inf)
        known, beyond = known + int(labelled.sum()), beyond + int((labelled & (gt >= max_disp)).sum())
    if pairs and not scored:
        raise DatasetError(
            f"no pixel of the ground truth under {config.val_data} is known and inside the network's disparity "
            f"range (0 to {max_disp:g} px{', matchable' if config.loss_region == 'matchable' else ''}): there is "
            "nothing to validate on"
        )
    if beyond:  # the validation EPE and eval's on the same folder differed, unsaid
        warn(
            f"{config.val_data}: {100 * beyond / known:.1f} % of the known ground-truth pixels lie at or beyond the "
            f"network's range ({max_disp:g} px); validation leaves them out (eval scores them)"
        )


@torch.no_grad()
def validate(
    model: torch.nn.Module, batches: Iterable[Batch], spec: ModelSpec, max_disp: float, region: str = "all"
) -> dict[str, float]:
    """EPE and bad-1/2/3 of the model (eval mode, fp32) over the validation batches, on the pixels of
    the loss ``region`` (:func:`~.losses.training_mask`).

    Inputs are padded at the bottom/right to the spec's size divisor and the output cropped back.
    """
    modes = [(module, module.training) for module in model.modules()]  # frozen parts stay in eval
    model.eval()
    sums = {"abs_error": 0.0, "bad1": 0.0, "bad2": 0.0, "bad3": 0.0, "pixels": 0.0}
    try:
        for batch in batches:
            height, width = batch["left"].shape[-2:]
            pad_h, pad_w = (-height) % spec.size_divisor, (-width) % spec.size_divisor
            inputs = [
                F.pad(normalize_images(batch[side], spec.normalization), (0, pad_w, 0, pad_h), mode="replicate")
                for side in ("left", "right")
            ]
            if "hints" in batch:  # a guided network's (:mod:`.hints`); padding has none
                inputs.append(F.pad(batch["hints"], (0, pad_w, 0, pad_h)))
            prediction = model(*inputs)[..., :height, :width]
            gt = batch["disparity"]
            for key, value in batch_errors(prediction, gt, training_mask(gt, max_disp, region)).items():
                sums[key] += value
    finally:
        for module, training in modes:
            module.train(training)
    return summarize_errors(sums)


# ----------------------------------------------------------------------------------- model, state
def build_network(name: str, settings: dict[str, Any]) -> tuple[torch.nn.Module, ModelSpec, dict[str, Any]]:
    """Build a registered network with its resolved settings."""
    spec = get_spec(name)
    if spec.kind != "network":
        raise InputError(f"model '{name}' is a {spec.kind} method; `rtstereo train` trains networks (e.g. rtnet)")
    resolved = spec.resolve_settings(settings)
    return import_object(spec.builder)(resolved), spec, resolved


def architecture_of(path: str) -> tuple[str, dict[str, Any], Any]:
    """``(model, settings, checkpoint object)`` of an rtstereo checkpoint."""
    if not Path(path).exists():
        refuse_registry_name(path)
    obj = read_torch_file(path)
    described = describe(obj)
    if described is None:
        raise CheckpointError(
            f"{path} is not an rtstereo checkpoint (expected format '{FORMAT_TAG}', with the architecture "
            "inside); --init and --resume take checkpoints written by `rtstereo train`"
        )
    return described[0], described[1], obj


def load_weights_adding_modules(model: torch.nn.Module, checkpoint: Any, path: str, name: str) -> list[str]:
    """Load a checkpoint into a network that has modules the checkpoint lacks (``--init --set ...``).

    Every weight of the checkpoint must fit the network; weights the checkpoint lacks keep their
    initialisation. Returns the top-level names of those fresh modules.
    """
    state_dict = strip_prefix(find_state_dict(checkpoint, path, ("state_dict", "model")))
    own = model.state_dict()
    fitting = {k: v for k, v in state_dict.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if len(fitting) != len(state_dict):
        load_into(model, state_dict, path, name)  # raises, naming the weights that do not fit
    model.load_state_dict(fitting, strict=False)
    return sorted({k.split(".")[0] for k in own if k not in fitting})


def freeze_parameters(model: torch.nn.Module, prefixes: tuple[str, ...]) -> list[torch.nn.Module]:
    """Fix the parameters whose names start with ``prefixes``; returns the modules holding them.

    Raises:
        InputError: a prefix that names no parameter, or one that would leave nothing to train.
    """
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(_has_prefix(name, prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ConfigSettingError(
                "freeze", f"no parameter of the network starts with '{prefix}' (it has: {', '.join(tops)})"
            )
    for name, parameter in model.named_parameters():
        if any(_has_prefix(name, prefix) for prefix in prefixes):
            parameter.requires_grad_(False)
    if prefixes and not any(p.requires_grad for p in model.parameters()):
        raise ConfigSettingError("freeze", f"{', '.join(prefixes)} covers every parameter; nothing would train")
    return [
        module
        for name, module in model.named_modules()
        if name and any(_has_prefix(name, prefix) for prefix in prefixes)
    ]


def _has_prefix(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def set_training_mode(model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    """Training mode, except for frozen modules: their batch norms keep using the loaded statistics."""
    model.train()
    for module in frozen:
        module.eval()


def training_prediction_count(
    model: torch.nn.Module, size_hw: tuple[int, int], device: torch.device, batch_size: int = 1
) -> int:
    """How many predictions ``model`` returns in its training mode, from one pass of a copy on zeros.

    A copy, and the random streams forked: a training-mode pass moves the batch-norm statistics and may draw
    (dropout), and the run must go as it would without this pass.

    Args:
        model: the network, in the modes it trains in (:func:`set_training_mode`).
        size_hw: an input size it takes (the run's crop), pixels.
        device: where it is.
        batch_size: the run's batch; the probe takes 2 pairs of it at most (batch norm needs two values per
            channel: a 32x32 crop has one at rtnet's coarsest level, which a batch of 2 doubles).

    Raises:
        ConfigSettingError: for ``crop_hw``, when the crop at this batch leaves batch norm one value per channel.
    """
    probe = copy.deepcopy(model)
    pairs = max(1, min(int(batch_size), 2))
    zeros = torch.zeros(pairs, 3, *size_hw, device=device)
    hints = () if getattr(model, "guidance", None) is None else (torch.zeros(pairs, 1, *size_hw, device=device),)
    gpus = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus), torch.no_grad():
        try:
            outputs = probe(zeros, zeros, *hints)
        except ValueError as exc:  # torch's traceback from the first step: "Expected more than 1 value per channel"
            if "value per channel" not in str(exc):
                raise
            height, width = size_hw
            raise ConfigSettingError(
                "crop_hw",
                f"{height}x{width} at a batch of {counted(pairs, 'pair')} leaves one value per channel at the "
                "network's coarsest level, which batch norm cannot train on: give a larger crop (e.g. "
                f"{height}x{2 * width}) or a batch of 2 pairs or more",
            ) from None
    return len(outputs) if isinstance(outputs, (list, tuple)) else 1


# ------------------------------------------------------------------------------------- the loop
def train(config: TrainConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or fine-tune, or resume) a network as the config says.

    Args:
        config: the run's configuration (see :class:`~rtstereo.train.config.TrainConfig`).
        echo: where human-readable progress lines go.

    Returns:
        Summary: ``step`` reached, this process's ``rank`` (0 unless data-parallel), ``best``
        validation EPE and its step, ``last`` validation metrics (rank 0), and the run's file paths.

    Raises:
        InputError, CheckpointError, DatasetError: a bad config, checkpoint or dataset.
        KeyboardInterrupt: after writing ``last.pt`` (resume with ``--resume``); any other error
            raised during the steps also propagates after ``last.pt`` is written.
    """
    threads = torch.get_num_threads()
    try:
        return _Run(config, echo).run()
    finally:
        torch.set_num_threads(threads)  # a library call leaves the process as it found it


class _Run:
    """One training run: the model, its optimiser, the data, and the files of the run folder.

    In a data-parallel run every rank builds one; rank 0 alone validates and writes files.
    """

    plotting = True  # until matplotlib turns out to be missing
    stopping = False  # once Ctrl-C or a failure has stopped the steps: the state is being written

    def __init__(self, config: TrainConfig, echo: Callable[[str], None]):
        self.ranks = ranks_from_environment()
        self.echo = echo if self.ranks.writer else _quiet
        self.device = resolve_device(training_device(config.device, self.ranks))
        self.dtype = autocast_dtype(config.precision, self.device)
        self.prefetch = prefetch_wanted(config.prefetch, self.device, self.ranks.world_size)  # batches made ahead
        if config.threads and self.device.type == "cpu":
            torch.set_num_threads(config.threads)
        distributed.start(self.ranks, self.device)
        self.files = RunFiles(Path(config.out_dir))  # the folder is made once everything below has been checked
        if self.ranks.writer:
            self.files.check_usable(config.resume)

        # The architecture comes from the checkpoint when resuming or fine-tuning: no flags to repeat.
        source = config.resume or config.init
        checkpoint: dict[str, Any] = {}
        name, settings = config.model, dict(config.settings)
        stored_settings: dict[str, Any] | None = None
        if source:
            name, stored_settings, checkpoint = architecture_of(source)
            if config.resume and "step" not in checkpoint:
                raise CheckpointError(
                    f"{source} holds weights but no training step; start a new run from it with --init {source}"
                )
            # Fine-tuning may change settings that add modules; a resumed run is what it was.
            if config.resume:
                _check_same_settings(name, stored_settings, settings, source)
            settings = {**stored_settings, **settings} if config.init else dict(stored_settings)
        torch.manual_seed(config.seed)
        _check_batch_memory(config, self.device)
        _check_validation_memory(config, self.device)
        _check_network_memory(config, name, settings, self.device)
        self.model, self.spec, settings = build_network(name, settings)
        # Paths made absolute: config.json and the checkpoints then hold what a rerun (-c config.json) or a resume
        # needs from any working folder (a relative --val-data made the run impossible to resume from elsewhere).
        paths = {key: os.path.abspath(getattr(config, key)) for key in PATH_KEYS if getattr(config, key)}
        self.config = config = config.replace(model=self.spec.name, settings=settings, **paths)  # RTNET: rtnet
        self.max_disp = float(settings.get("max_disp", 192))
        _check_crop(config, self.spec)
        if source:
            stored = self.spec.resolve_settings(stored_settings)
            if stored == settings:
                import_object(self.spec.checkpoint_loader)(self.model, source)
            else:
                fresh = load_weights_adding_modules(self.model, checkpoint, source, name)
                if fresh:
                    self.echo(f"note: {source} has no weights for {', '.join(fresh)}: they start from initialisation")
        frozen = freeze_parameters(self.model, config.freeze)
        # Channels-last weights (and inputs, see TrainStep): on this project's 2-core CPU the rtnet
        # step ran 1.4x faster than in the default layout; on GPUs it is the layout cuDNN prefers.
        self.model.to(self.device, memory_format=torch.channels_last)
        set_training_mode(self.model, frozen)  # validation restores each module's own mode afterwards
        # A wrong count of --loss-weights was refused by the first step, after the run folder was made.
        predictions = training_prediction_count(self.model, config.crop_hw, self.device, config.batch_size)
        check_weight_count(config.loss_weights, predictions)

        self.optimizer = make_optimizer([p for p in self.model.parameters() if p.requires_grad], config)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype == torch.float16 else None
        self.step, self.best_epe, self.best_step = 0, math.inf, -1
        self.validated_step = -1  # the step of the last validation that ran to its end
        self.saved_step: int | None = None  # the step last.pt holds, once known: a run resumed from it, or written
        if config.resume:
            if "optimizer" in checkpoint:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
            else:  # a compact state (weights + step, see compact_checkpoint): only the moments restart
                self.echo(
                    f"note: {source} holds no optimiser state; AdamW's moments restart at step {checkpoint['step']}"
                )
            if self.scaler is not None and checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            self.step = int(checkpoint["step"])
            if Path(config.resume).resolve() == self.files.last.resolve():
                self.saved_step = self.step
            if self.step > config.steps:
                # It trained nothing, yet wrote its --steps into last.pt: a plain --resume then stopped there too.
                stored = checkpoint.get("config")
                target = stored.get("steps") if isinstance(stored, dict) else None
                its_own = f" (its own target: {target})" if isinstance(target, int) and target > self.step else ""
                raise ConfigSettingError(
                    "steps",
                    f"{config.steps} is below step {self.step}, where {source} stopped: give a larger number to go "
                    f"on{its_own}, or start a new run from its weights with --init {source}",
                )
            self.best_epe, self.best_step = self.best_so_far(checkpoint, source)
            # a checkpoint of an older version, which does not say, is taken as validated where due
            self.validated_step = int(checkpoint.get("validated_step", self.step))
            if math.isfinite(self.best_epe):  # a score to beat, measured on the run's own validation set
                _check_same_validation(config, checkpoint.get("config"), source)

        # What the step calls: the network, wrapped for gradient averaging, compiled if asked. The
        # files always get self.model's own weights (no "module." or "_orig_mod." in their names).
        network = distributed.wrap(self.model, self.ranks, self.device)
        if config.compile:
            _check_cpu_compiler(self.device)
            network = torch.compile(network)
        self.train_step = TrainStep(
            network, self.optimizer, self.scaler, self.spec, config, self.dtype, self.max_disp, self.ranks
        )
        scene_max_disp = float(min(config.data_max_disp or self.max_disp, self.max_disp))
        self.stream = (
            FolderStream(config, self.device, self.max_disp)
            if config.data
            else SyntheticStream(config, self.device, scene_max_disp)
        )
        if config.unlabeled:
            from .proxy import MixedStream, ProxyStream

            share = config.unlabeled_share
            # The rendered part of the batch: its own config has no unlabeled pairs (half real or more is allowed).
            rendered = SyntheticStream(
                config.replace(batch_size=config.batch_size - share, unlabeled=None), self.device, scene_max_disp
            )
            # SGBM labels every pair before the first step (about a second per pair and core): said, not silent.
            self.echo(f"proxy labels: SGBM on the unlabeled pairs of {config.unlabeled} ...")
            real = ProxyStream(config.unlabeled, share, config.crop_hw, self.max_disp, config.seed, self.device)
            self.stream = MixedStream(rendered, real)
        if self.ranks.writer and not config.val_data:
            # Rendered before the first step (about 30 s for the default 16 scenes of 256x512 on 2 cores): said.
            height, width = config.val_hw  # HxW, as --val-hw and --crop are given
            self.echo(f"validation set: rendering {counted(config.val_size, 'scene')} of {height}x{width} ...")
        self.val_batches = validation_batches(config, self.device, scene_max_disp) if self.ranks.writer else []
        if config.val_data:
            if self.ranks.writer:  # every pair is read once now, and at each validation: said, as rendering is
                pairs = counted(len(self.val_batches), "pair")
                self.echo(f"validation set: {pairs} of {config.val_data}, scored whole")
            _check_scored_pixels(self.val_batches, self.max_disp, config)
        if getattr(self.model, "guidance", None) is not None:  # a guided rtnet learns from SGBM's hints
            from .hints import HintedStream, with_hints

            # SGBM searches the network's whole range for the hints, which a crop must be wider than.
            narrowest = min(config.crop_hw[1], config.val_hw[1])
            if narrowest <= self.max_disp:
                raise InputError(
                    f"a guided network learns from SGBM's hints, which search its whole range ({self.max_disp:g} px): "
                    f"crops must be wider than that, got {narrowest} px (--crop / val_hw); use wider crops or a "
                    f"smaller --max-disp"
                )

            self.stream = HintedStream(self.stream, self.max_disp, config.seed)
            thinning = torch.Generator().manual_seed(config.val_seed)
            self.val_batches = [with_hints(batch, self.max_disp, thinning) for batch in self.val_batches]
        self.folder_lock: FileLock | None = None
        if self.ranks.writer:  # only now: a run refused above leaves no empty run folder behind
            self.folder_lock = self.files.make(config.resume)

    def best_so_far(self, checkpoint: dict[str, Any], source: str) -> tuple[float, int]:
        """The best validation EPE and its step that a resumed run must beat to replace ``best.pt``.

        Every checkpoint records them; one written before ``best.pt`` did (a ``best.pt`` of an older
        version) has them from the run's ``log.jsonl`` beside it, the best validation of the run so far,
        which is the score of the ``best.pt`` there. Without either, ``inf``: the resumed network is scored
        before its first step (:meth:`_run`).
        """
        if "best_epe" in checkpoint:
            return float(checkpoint["best_epe"]), int(checkpoint.get("best_step", -1))
        log = Path(source).parent / "log.jsonl"
        scores = [r for r in read_log(log) if r.get("kind") == "val"] if log.is_file() else []
        scores = [r for r in scores if isinstance(r.get("epe"), (int, float)) and math.isfinite(r["epe"])]
        if not scores:
            return math.inf, -1
        best = min(scores, key=lambda r: r["epe"])
        return float(best["epe"]), int(best.get("step", -1))

    def batch(self, step: int) -> Batch:
        """The batch this rank trains on at ``step`` (its own scenes in a data-parallel run)."""
        return self.stream(global_batch_index(step, self.ranks))

    def run(self) -> dict[str, Any]:
        try:
            # kill, job schedulers and torchrun (stopping its workers after Ctrl+C) send SIGTERM, whose default
            # action lost the steps since the last checkpoint; one while the state is being written is ignored
            with terminate_as_interrupt(Terminated, unless=lambda: self.stopping, once=True):
                return self._run()
        finally:
            distributed.stop(self.ranks)
            if self.folder_lock is not None:
                self.folder_lock.release()

    def _run(self) -> dict[str, Any]:
        config, files = self.config, self.files
        if self.ranks.writer:
            with atomic_path(files.config, "the run's configuration") as partial:  # never a truncated config.json
                partial.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        self.announce()
        if self.ranks.writer and self.step < config.steps:  # the run is under way: no refusal follows
            _say_unfinished_warmup(config)
        # The starting network's score is the baseline; a resumed run that knows no best score gets one too, and so
        # does one stopped at a step due for validation before that validation ended (Ctrl-C, kill): an uninterrupted
        # run scored that network, and best.pt would differ from its own.
        due = self.step > 0 and (self.step % config.val_every == 0 or self.step == config.steps)
        pending = due and self.validated_step != self.step
        batches: Any = self.batch
        try:
            # In the try: Ctrl-C here left a folder with a log but no checkpoint, which the same command then refused
            # as another run's and --resume could not continue.
            last_metrics = self.validate() if self.step == 0 or math.isinf(self.best_epe) or pending else {}
            window = _Window(self.step)
            batches = Prefetcher(self.batch, config.steps - 1, self.device) if self.prefetch else self.batch
            clock = _Clock(config, self.step)
            while self.step < config.steps:
                batch = batches(self.step)
                # Ctrl-C and SIGTERM are held back while a step trains: stopped halfway, its forward pass had already
                # moved the batch-norm statistics that last.pt then held (and an update could go uncounted), and the
                # resumed run trained that step again, ending with other weights than an uninterrupted one.
                with interrupts_deferred():
                    self.train_step(batch, self.step)
                    self.step += 1
                out_of_time = False
                if self.step % config.log_every == 0 or self.step == config.steps:
                    loss, skipped = self.train_step.flush()  # waits for the device: on log steps only
                    lr, pairs = learning_rate(self.step - 1, config), config.batch_size * self.ranks.world_size
                    self.log_training(window.flush(self.step, lr, loss, skipped, pairs), clock.seconds_left(self.step))
                    # Decided on log steps, where the ranks are in step anyway: all stop together.
                    out_of_time = clock.out_of_time(self.ranks, self.device)
                if self.step % config.val_every == 0 or self.step == config.steps or out_of_time:
                    last_metrics = self.validate()
                    window.restart(self.step)  # validation time is not training throughput
                if self.step % config.checkpoint_every == 0 or clock.checkpoint_due() or out_of_time:
                    self.save(files.last)
                if out_of_time:
                    self.echo(f"time limit of {config.time_limit_min:g} min reached at step {self.step}")
                    break
        except BaseException as exc:  # Ctrl-C, or a failure in the data or the model: keep the work done
            self.stopping = True  # torchrun follows Ctrl-C with SIGTERM: it must not cut this short
            try:
                _close(batches)  # in the try: Ctrl-C again while the batch being made was awaited saved nothing, unsaid
                self.finish(interrupted=True, reason=type(exc).__name__)
            except OutputError:  # a full disk: the error says which file, this line what it cost
                self.echo(f"stopped at step {self.step} ({type(exc).__name__}) without saving its state")
                raise
            except KeyboardInterrupt:  # Ctrl-C again while last.pt was written: the write is abandoned
                if self.ranks.writer and self.saved_step != self.step:  # it said "interrupted" alone
                    cause = interruption_cause(exc) if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
                    self.echo(f"stopped at step {self.step} ({cause}) without saving its state: {self._state_kept()}")
                    raise
            if isinstance(exc, InputError):  # a setting this run cannot train with: a plain resume would stop again
                # The folder now holds a run, which a new run there refuses: say how to go on from here.
                self.echo(
                    f"stopped at step {self.step}; state saved to {files.last}; fix the setting the error names: "
                    f"continue with --resume {files.last} and the corrected option (a plain --resume stops again), "
                    f"or remove {files.folder} and start over"
                )
            elif isinstance(exc, DatasetError):
                self.echo(
                    f"stopped at step {self.step}; state saved to {files.last}; repair or remove the pair the error "
                    f"names, then continue with --resume {files.last}"
                )
            else:  # Ctrl-C and kill as the other verbs name them: it said "(KeyboardInterrupt)", "(Terminated)"
                cause = interruption_cause(exc) if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
                self.echo(
                    f"stopped at step {self.step} ({cause}); state saved to {files.last} "
                    f"(continue with --resume {files.last})"
                )
            raise
        _close(batches)
        self.finish(interrupted=False)
        return {
            "step": self.step,
            "rank": self.ranks.rank,
            "best": {"epe": self.best_epe, "step": self.best_step},
            "last": last_metrics,
            "files": {name: str(getattr(files, name)) for name in ("last", "best", "log", "curve", "config")},
        }

    def announce(self) -> None:
        parameters = sum(p.numel() for p in self.model.parameters())
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        c = self.config
        world = self.ranks.world_size
        self._log(
            {
                "kind": "start",
                "step": self.step,
                "model": c.model,
                "settings": c.settings,
                "parameters": parameters,
                "device": str(self.device),
                "precision": precision,
                "prefetch": self.prefetch,
                "world_size": world,
                "data": self.stream.describe(),
                "config": c.to_dict(),
            }
        )
        processes = f" x {world} processes ({world * c.batch_size} pairs per step)" if world > 1 else ""
        compiled = ", compiled (torch.compile works while the first step runs: a minute or more)" if c.compile else ""
        ahead = ", batches made ahead" if self.prefetch else ""
        self.echo(
            f"training {c.model} {c.settings} ({parameters / 1e6:.2f} M parameters) on {self.device}{processes} "
            f"({precision}{compiled}{ahead}), {self.stream.describe()}, steps {self.step} -> {c.steps}, run folder "
            f"{self.files.folder}"
        )
        if self.step >= c.steps:
            self.echo(
                f"nothing to train: the run is at step {self.step} and --steps is {c.steps}; give a larger --steps "
                "to go on"
            )

    def log_training(self, record: dict[str, Any], seconds_left: float | None = None) -> None:
        self._log(record)
        left = "" if seconds_left is None else f", about {duration(seconds_left)} left"
        self.echo(
            f"step {record['step']}/{self.config.steps}: loss {record['loss']:.4f}, lr {record['lr']:.2e}, "
            f"{record['pairs_per_s']:.2f} pairs/s{left}"
        )

    def _log(self, record: dict[str, Any]) -> None:
        if self.ranks.writer:
            _append_log(self.files.log, record)

    def validate(self) -> dict[str, float]:
        """Score the network, keep ``best.pt``, log, and redraw the learning curve.

        Rank 0 only: the other ranks go on, and wait for it at the next exchange of gradients.
        """
        if not self.ranks.writer:
            return {}
        metrics = validate(self.model, self.val_batches, self.spec, self.max_disp, self.config.loss_region)
        self.validated_step = self.step  # before best.pt is written: a run resumed from it scores nothing again
        if metrics["epe"] < self.best_epe:
            self.best_epe, self.best_step = metrics["epe"], self.step
            self.save(self.files.best, training_state=False)  # weights to use or fine-tune: a third the size
        _append_log(self.files.log, {"kind": "val", "step": self.step, **metrics})
        self.plot()
        self.echo(
            f"step {self.step}: validation EPE {metrics['epe']:.3f} px, bad-2 {metrics['bad-2']:.2f} % "
            f"(best {self.best_epe:.3f} at step {self.best_step})"
        )
        return metrics

    def plot(self) -> None:
        """Redraw ``curve.png``; without matplotlib, say once that there is none."""
        if self.plotting and not plot_learning_curve(self.files.log, self.files.curve):
            self.plotting = False
            self.echo(
                "note: matplotlib is not installed, so no learning curve (curve.png) is drawn; "
                "log.jsonl holds every figure (pip install matplotlib, or the 'viz' extra, to get it)"
            )

    def save(self, path: Path, training_state: bool = True) -> None:
        """Write a self-describing checkpoint, with the optimiser state unless ``training_state`` is off."""
        if not self.ranks.writer:
            return
        # The best score goes into every checkpoint: a run resumed from best.pt must know what to beat.
        extra: dict[str, Any] = {
            "best_epe": self.best_epe,
            "best_step": self.best_step,
            "validated_step": self.validated_step,
        }
        if training_state:
            extra["optimizer"] = self.optimizer.state_dict()
            extra["scaler"] = self.scaler.state_dict() if self.scaler else None
        try:
            save_checkpoint(
                path,
                self.config.model,
                self.config.settings,
                self.model.state_dict(),
                step=self.step,
                config=self.config.to_dict(),
                **extra,
            )
        except OSError as exc:  # a full disk was a traceback, twice (the state is saved again as the run stops)
            raise OutputError(f"cannot write the checkpoint {path}: {os_reason(exc, path)}") from None
        if path == self.files.last:
            self.saved_step = self.step

    def _state_kept(self) -> str:
        """What ``last.pt`` holds when the state could not be written into it, and how to go on from there."""
        last = self.files.last
        if self.saved_step is not None:
            return f"{last} holds step {self.saved_step} (continue from there with --resume {last})"
        if last.is_file():
            return f"{last} holds an earlier state (continue from there with --resume {last})"
        return f"no {last.name} was written"

    def finish(self, interrupted: bool, reason: str | None = None) -> None:
        self.save(self.files.last)
        record = {"kind": "end", "step": self.step, "interrupted": interrupted}
        self._log({**record, "reason": reason} if reason else record)
        if interrupted and self.ranks.writer:  # otherwise the last validation has just drawn it
            self.plot()


def _quiet(_line: str) -> None:
    pass


class Terminated(KeyboardInterrupt):
    """SIGTERM while a run trains: handled as Ctrl+C (``last.pt`` written, the log's end record says so)."""


def _now() -> float:
    """Seconds on a monotonic clock (a function of its own, so tests can move time)."""
    return time.monotonic()


class _Clock:
    """The run's time limit and its checkpoints by the minute."""

    def __init__(self, config: TrainConfig, step: int = 0) -> None:
        self.config = config
        self.started = self.saved = _now()
        self.first_step = step  # where this process started training

    def seconds_left(self, step: int) -> float | None:
        """Time to the end of the run (or of its time limit, if sooner) at the pace of this process so far,
        validations and checkpoints included; ``None`` at the end or before a step is done."""
        done, elapsed = step - self.first_step, _now() - self.started
        if done <= 0 or step >= self.config.steps:
            return None
        left = elapsed / done * (self.config.steps - step)
        if self.config.time_limit_min:
            left = min(left, 60.0 * self.config.time_limit_min - elapsed)
        return max(0.0, left)

    def out_of_time(self, ranks, device: torch.device) -> bool:
        """Whether the time limit has passed (the same answer on every rank)."""
        if not self.config.time_limit_min:
            return False
        over = _now() - self.started >= 60.0 * self.config.time_limit_min
        if ranks.world_size > 1:
            flag = distributed.all_ranks_sum(torch.tensor([float(over)], device=device), ranks)
            return bool(flag.item() > 0)
        return over

    def checkpoint_due(self) -> bool:
        """Whether ``checkpoint_minutes`` have passed since the last timed checkpoint (then restarts)."""
        if not self.config.checkpoint_minutes:
            return False
        now = _now()
        if now - self.saved < 60.0 * self.config.checkpoint_minutes:
            return False
        self.saved = now
        return True


def _close(batches: Any) -> None:
    if isinstance(batches, Prefetcher):
        batches.close()


def _check_crop(config: TrainConfig, spec: ModelSpec) -> None:
    height, width = config.crop_hw
    if height % spec.size_divisor or width % spec.size_divisor:
        raise ConfigSettingError(
            "crop_hw",
            f"{spec.name} trains on sizes that are multiples of {spec.size_divisor}, got {height}x{width}; "
            f"use e.g. {_round_up(height, spec.size_divisor)}x{_round_up(width, spec.size_divisor)}",
        )


def _check_batch_memory(config: TrainConfig, device: torch.device) -> None:
    """Refuse a batch that cannot be held, before the run folder is made: ``--batch-size 1000000000000`` ended in a
    traceback at the first step, leaving the folder behind.

    The bound is the batch's own tensors (:data:`~rtstereo.runtime.memory.BATCH_BYTES_PER_PX`): the crops read from
    files (``--data``, the ``--unlabeled`` share) are cut and stacked on the host, twice that
    (:data:`~rtstereo.runtime.memory.STACKED_CROP_BYTES_PER_PX`); rendered scenes are made on the training device, so
    on a CPU they count against the host's budget too, and on a GPU the whole batch ends there, against its memory.

    Raises:
        ConfigSettingError: for ``batch_size``, naming the bytes needed and the budget.
    """
    from ..runtime.memory import BATCH_BYTES_PER_PX, STACKED_CROP_BYTES_PER_PX, Budget, batch_over_budget, memory_budget

    read = config.batch_size if config.data else config.unlabeled_share
    rendered_on_host = config.batch_size - read if device.type == "cpu" else 0
    host_bytes_per_px = (read * STACKED_CROP_BYTES_PER_PX + rendered_on_host * BATCH_BYTES_PER_PX) / config.batch_size
    checks = [(int(host_bytes_per_px), memory_budget(), "")]  # rounded down: still a lower bound
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        checks.append((BATCH_BYTES_PER_PX, Budget(total, f"the memory of {device}"), f" on {device}"))
    for bytes_per_px, budget, where in checks:
        problem = batch_over_budget(config.batch_size, config.crop_hw, bytes_per_px, budget, where)
        if problem is not None:
            raise ConfigSettingError("batch_size", problem)


def _check_validation_memory(config: TrainConfig, device: torch.device) -> None:
    """Refuse a synthetic validation set that cannot be held, before anything is rendered: it is rendered once and
    kept for the run (:func:`validation_batches`), and ``--val-size 100000`` rendered for hours past the memory
    budget. The bound is what its tensors hold (:data:`~rtstereo.runtime.memory.BATCH_BYTES_PER_PX` per pixel of each
    scene), on the host, and on a GPU also in its memory, where the set is moved.

    Raises:
        ConfigSettingError: for ``val_size``, naming the bytes needed and the budget.
    """
    if config.val_data:  # read from the folder at each validation, not held
        return
    from ..runtime.memory import BATCH_BYTES_PER_PX, Budget, batch_over_budget, memory_budget

    budgets = [(memory_budget(), "")]
    if device.type == "cuda":
        budgets.append(
            (Budget(torch.cuda.get_device_properties(device).total_memory, f"the memory of {device}"), f" on {device}")
        )
    for budget, where in budgets:
        problem = batch_over_budget(config.val_size, config.val_hw, BATCH_BYTES_PER_PX, budget, where, "scenes")
        if problem is not None:
            raise ConfigSettingError("val_size", f"the synthetic validation set, held for the run: {problem}")


def _check_network_memory(config: TrainConfig, name: str, settings: dict[str, Any], device: torch.device) -> None:
    """Refuse a network whose cost volume over a batch of crops cannot be held, before it is built: ``--max-disp
    1e9`` ended in a traceback from the allocator while the network was built (its first layer grows with the range).

    The bound is what one prediction of the network holds at its peak (:func:`~rtstereo.runtime.memory.
    working_bytes_per_px`, measured for inference) for each crop of the batch; a training step also keeps the
    activations for the backward pass (about 1 400-1 700 B per pixel for rtnet at max_disp 192, where this counts
    576), so a network that passes may still not fit.

    Raises:
        SettingError: for ``max_disp``, with the largest that fits, when it is above the network's default and a
            smaller range would fit.
        ConfigSettingError: for ``batch_size`` otherwise.
    """
    from ..runtime.memory import (
        BYTES_PER_PX_PER_DISP,
        Budget,
        format_bytes_apart,
        memory_budget,
        working_bytes_per_px,
    )

    spec = get_spec(name)
    if spec.kind != "network":  # build_network says what it is
        return
    max_disp = spec.resolve_settings(settings).get("max_disp")
    if isinstance(max_disp, bool) or not isinstance(max_disp, (int, float)) or not 0 < max_disp < math.inf:
        return  # the network refuses it when built, in its own words
    height, width = config.crop_hw
    batch_px = config.batch_size * height * width
    per_px = working_bytes_per_px(spec.name, "network", max_disp, width)
    budget = memory_budget()
    where = ""
    if device.type == "cuda":
        budget = Budget(torch.cuda.get_device_properties(device).total_memory, f"the memory of {device}")
        where = f" on {device}"
    if per_px * batch_px <= budget.bytes:
        return
    needed, allowed = format_bytes_apart(per_px * batch_px, budget.bytes)
    shown = int(max_disp) if float(max_disp).is_integer() else max_disp  # 1000000000, not 1e+09
    said = (
        f"{spec.name} with max_disp {shown} on {counted(config.batch_size, 'crop')} of {height}x{width} needs "
        f"at least {needed}{where} (one prediction's peak for each crop), more than the {allowed} budget "
        f"({budget.source})"
    )
    per_disp = BYTES_PER_PX_PER_DISP.get(spec.name)
    if per_disp is not None and max_disp > spec.defaults.get("max_disp", math.inf):  # a range beyond the usual
        fixed = per_px - per_disp * max_disp  # what does not grow with the range
        step = max(1, spec.size_divisor)
        fitting = int((budget.bytes / batch_px - fixed) / per_disp) // step * step
        if fitting >= step:
            raise SettingError(
                "max_disp", f"{said}: a max_disp of at most {fitting} fits, or give fewer or smaller crops"
            )
    raise ConfigSettingError("batch_size", f"{said}: give fewer or smaller crops")


def _say_unfinished_warmup(config: TrainConfig) -> None:
    """Warn when the warm-up does not end before the run does: a short fine-tuning (``--steps 200`` with the default
    500 warm-up steps) trained at a fraction of ``--lr`` throughout, unsaid."""
    if config.warmup_steps <= config.steps:  # its last step reaches --lr
        return
    peak = learning_rate(config.steps - 1, config)
    warn(
        f"--warmup-steps {config.warmup_steps} is more than --steps {config.steps}: the learning rate rises for the "
        f"whole run and reaches {peak:.3g}, not --lr {config.lr:g}; give fewer warm-up steps to train at --lr"
    )


def _check_same_settings(name: str, stored: dict[str, Any], asked: dict[str, Any], source: str) -> None:
    """Refuse model settings (``--set``, ``--max-disp``) that would change the network a run resumes: they were
    silently dropped, the run going on with the checkpoint's."""
    spec = get_spec(name)
    have, want = spec.resolve_settings(stored), spec.resolve_settings({**stored, **asked})
    for key, value in want.items():
        if have.get(key) != value:
            raise SettingError(
                key,
                f"{value} would change the network of {source} ({key} {have.get(key)} there), which a resumed run "
                f"continues as it was: drop it, or start a new run from the weights with --init {source}",
            )


# The options that make the validation set and its score: best.pt was chosen by them.
VALIDATION_KEYS = ("val_data", "val_size", "val_hw", "val_seed", "noise_scale", "data_max_disp", "loss_region")
# The options that name files and folders, recorded as absolute paths.
PATH_KEYS = ("init", "data", "val_data", "unlabeled")


def _check_same_validation(config: TrainConfig, stored: Any, source: str) -> None:
    """Refuse to resume a run on another validation set than its own: its best score, which ``best.pt``
    must be beaten by, was measured on that one (a new run from the weights, ``--init``, starts afresh)."""
    if not isinstance(stored, dict):  # a state written without its config: nothing to compare
        return
    before = TrainConfig().replace(**{key: stored[key] for key in VALIDATION_KEYS if key in stored})
    for key in VALIDATION_KEYS:
        if key == "val_data" and _same_folder(before.val_data, config.val_data):
            continue
        if getattr(before, key) != getattr(config, key):
            raise ConfigSettingError(
                key,
                f"{_shown(getattr(config, key))} validates on another set than the run of {source} did "
                f"({_shown(getattr(before, key))}), whose best.pt was chosen on it: keep its value to resume, "
                f"or start a new run from its weights with --init {source}",
            )


def _same_folder(stored: str | None, given: str | None) -> bool:
    """Whether a resumed run's folder ``given`` is the one its run recorded as ``stored``, however spelled
    (``mb``, ``./mb``, ``/data/mb``). A relative path that an older run recorded, and that is not found from
    here, is the folder ``given`` names when it is its tail (``mb`` of ``/data/mb``).

    Examples:
        >>> _same_folder(None, None), _same_folder("/no/such/mb", "/no/such/mb/"), _same_folder("/a/mb", "/b/mb")
        (True, True, False)
    """
    if stored is None or given is None:
        return stored == given
    if os.path.realpath(stored) == os.path.realpath(given):
        return True
    tail = Path(os.path.normpath(stored)).parts
    if Path(stored).is_absolute() or os.path.exists(stored) or ".." in tail:
        return False
    return Path(os.path.realpath(given)).parts[-len(tail) :] == tail


def _shown(value: Any) -> str:
    """A config value as typed: ``64x128`` for a size."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _check_cpu_compiler(device: torch.device) -> None:
    """Refuse ``compile`` on a CPU without the C++ compiler inductor builds its kernels with, before the run
    folder is made: torch.compile failed only in the first step, a minute later, with a long traceback."""
    if device.type != "cpu":
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a torch without it: torch.compile says what it misses itself
        return
    try:
        get_cpp_compiler()
    except Exception:  # torch._inductor.exc.InvalidCxxCompiler, or another failure to find one
        raise ConfigSettingError(
            "compile",
            "torch.compile on a CPU builds C++ kernels, and no working C++ compiler was found (g++, or the one "
            "$CXX names): install one, or train without it",
        ) from None


def _round_up(value: int, divisor: int) -> int:
    return -(-value // divisor) * divisor


class _Window:
    """Training throughput since the last training log line: wall-clock, the making of batches included."""

    def __init__(self, step: int) -> None:
        self.restart(step)

    def restart(self, step: int) -> None:
        """Count from ``step``, now (also after a pause that is not training, e.g. a validation)."""
        self.started, self.first_step = time.perf_counter(), step

    def flush(self, step: int, lr: float, loss: float, skipped: int, pairs_per_step: int) -> dict[str, Any]:
        """The log record of the steps up to ``step``; the window restarts there."""
        seconds = time.perf_counter() - self.started
        record = {
            "kind": "train",
            "step": step,
            "loss": loss,
            "lr": lr,
            "pairs_per_s": pairs_per_step * (step - self.first_step) / max(seconds, 1e-9),
            "skipped": skipped,
        }
        self.restart(step)
        return record


def _append_log(path: Path, record: dict[str, Any]) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write the run's log {path}: {os_reason(exc, path)}") from None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl`` (a truncated last line, from a crash, is ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def current_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the run as it stands: a run resumed at step ``s`` (after a crash, or from ``best.pt``)
    drops the records of the steps after ``s`` that it trains again, so a curve does not run back.

    Examples:
        >>> log = [{"kind": "train", "step": 1}, {"kind": "train", "step": 2}, {"kind": "start", "step": 1},
        ...        {"kind": "train", "step": 2}]
        >>> [(r["kind"], r["step"]) for r in current_records(log)]
        [('train', 1), ('start', 1), ('train', 2)]
    """
    kept: list[dict[str, Any]] = []
    for record in records:
        if record.get("kind") == "start":
            resumed_at = record.get("step", 0)
            kept = [r for r in kept if r.get("kind") not in ("train", "val") or r.get("step", 0) <= resumed_at]
        kept.append(record)
    return kept


def plot_learning_curve(log_path: str | Path, png_path: str | Path) -> bool:
    """Draw training loss and validation EPE / bad-2 against steps from a run's log.

    Returns:
        Whether the PNG was drawn: ``False`` when matplotlib is not installed (a plot is a
        convenience of training, not a requirement: the log holds every figure).
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    except ImportError:
        return False

    records = current_records(read_log(log_path))
    train_points = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and math.isfinite(r["loss"])]
    val_points = [(r["step"], r["epe"], r["bad-2"]) for r in records if r.get("kind") == "val"]
    figure = Figure(figsize=(10, 4), dpi=80, layout="tight")
    loss_axes, val_axes = figure.subplots(1, 2)
    if train_points:
        loss_axes.plot(*zip(*train_points), color="tab:blue")
        if any(loss > 0 for _, loss in train_points):  # a log scale of zeros only: matplotlib's warning
            loss_axes.set_yscale("log")
    loss_axes.set(title="training loss", xlabel="step", ylabel="multi-scale smooth-L1")
    if val_points:
        steps, epe, bad2 = zip(*val_points)
        val_axes.plot(steps, epe, "o-", color="tab:red", label="EPE")
        bad_axes = val_axes.twinx()
        bad_axes.plot(steps, bad2, "s--", color="tab:green", label="bad-2")
        bad_axes.set_ylabel("bad-2 (%)", color="tab:green")
    val_axes.set(title="validation", xlabel="step")
    val_axes.set_ylabel("EPE (px)", color="tab:red")
    with atomic_path(png_path, "the learning curve") as partial:  # never a half-written curve
        figure.savefig(partial)
    return True


def compact_checkpoint(source: str | Path, target: str | Path) -> Path:
    """A resumable checkpoint a third the size: weights, step and run config without the optimiser.

    AdamW's moments rebuild within a few hundred steps, so resuming from it costs little; it is what
    the repository keeps between sessions of a long training run (``training/default/state.pt``).
    """
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint.pop("optimizer", None)
    checkpoint.pop("scaler", None)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, "the compact checkpoint") as partial:
        torch.save(checkpoint, partial)
    return target
