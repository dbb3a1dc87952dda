"""The network ``rtstereo adapt`` trains: which weights a model name stands for, and the adapted checkpoint."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..models import PACKAGED_SOURCES, packaged_network_source  # noqa: F401 (imported from here too)
from ..models.registry import ModelSpec
from .adapt import AdaptConfig, AdaptResult


@dataclass
class AdaptableNetwork:
    """A network ready to adapt: its registry entry, settings, module, and where its weights came from."""

    spec: ModelSpec
    settings: dict[str, Any]
    module: torch.nn.Module
    source: str
    loss_weights: list[float] | None
    note: str | None = None
    hint_settings: dict[str, Any] | None = None  # a hybrid's settings, when its (guided) network is adapted
    # What a checkpoint adapted from records of its own adaptations (adapt, --adapt-save), oldest first
    earlier: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """What a checkpoint of the adapted weights records of their origin: ``adapted_from``, and
        ``earlier_adaptations`` when those weights had been adapted before (a checkpoint adapted again, as after
        an interrupted run: it said "adapted from mine.pt", itself, with the last run's steps only)."""
        return {"adapted_from": self.source, **({"earlier_adaptations": self.earlier} if self.earlier else {})}


def hybrid_spec(model: str) -> Any:
    """The registry entry of ``model`` when it names a hybrid method (``default`` may), else ``None``
    (a network, a classical method, a checkpoint or an ``.onnx`` file)."""
    from ..api import check_model_file
    from ..models import get_spec, is_onnx_file, resolve_alias

    name = resolve_alias(model)
    if is_onnx_file(name) or (Path(name).suffix and Path(name).is_file()):
        return None
    check_model_file(name)
    spec = get_spec(name)
    return spec if spec.kind == "hybrid" else None


def split_hybrid_settings(hybrid: Any, settings: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the hybrid's own settings, resolved; the rest, for its network)`` from one set of overrides."""
    rest = dict(settings or {})
    own = hybrid.resolve_settings({k: rest.pop(k) for k in list(rest) if k in hybrid.defaults})
    return own, rest


def load_adaptable(
    model: str, weights: str | os.PathLike[str] | None = None, settings: dict[str, Any] | None = None
) -> AdaptableNetwork:
    """Build the PyTorch network ``model`` names, with its weights, for :func:`adapt`.

    Args:
        model: a registry network with ``weights`` (e.g. ``rtnet``), an rtstereo checkpoint, or the
            packaged ONNX network's name (``rtnet-v5``: its PyTorch state, ``training/default/state.pt``,
            when rtstereo runs from a source checkout).
        weights: weights file or URL of a registry network.
        settings: setting overrides.

    Raises:
        InputError: a classical or ONNX-only model, or a network without weights.
        CheckpointError: an unreadable weights file.
    """
    from ..export.onnx_export import build_network
    from ..io.download import fetch, is_url
    from ..models import DEFAULT_ALIAS, PACKAGED_NETWORK, get_spec, is_onnx_file, resolve_alias
    from ..models.checkpoint import describe, read_torch_file

    note = None
    name = resolve_alias(model)
    hybrid = hybrid_spec(model)
    if hybrid is not None and weights is not None:
        # Skipped as a hybrid, it was refused as "a packaged ONNX model with no trainable weights".
        raise InputError(
            f"model '{hybrid.name}' takes no --weights (its network is a setting, the one adapted): --model {model} "
            f"--set network={weights}"
        )
    hybrid_settings = None
    if hybrid is not None:
        hybrid_settings, settings = split_hybrid_settings(hybrid, settings)
        name = hybrid_settings["network"]
        note = (
            f"{hybrid.name} is {name} with SGBM's confident matches: its network is adapted (SGBM has nothing to "
            f"learn), and the checkpoint written is that network alone (run it in the hybrid with --model "
            f"{hybrid.name} --set network=OUT)"
        )
    if is_onnx_file(name):
        raise InputError(
            f"{name} is an exported ONNX file: its weights cannot be trained; adapt the checkpoint it was "
            "exported from (--model CHECKPOINT.pt, or --model rtnet --weights FILE)"
        )
    is_file = Path(name).suffix != "" and Path(name).is_file()
    if name in PACKAGED_SOURCES and weights is not None:
        # It fell through to "'rtnet-v5' is a packaged ONNX model with no trainable weights; adapt a network:
        # --model rtnet-v5, ...", refusing the model it then advised (rtnet-v5 is the default --model).
        raise InputError(
            f"{name} takes no --weights: it is adapted from its own PyTorch state; to adapt the weights of {weights}, "
            f"name their network: --model rtnet --weights {weights} (or --model {weights}, an rtstereo checkpoint)"
        )
    if name in PACKAGED_SOURCES and weights is None:
        source = packaged_network_source(name)
        if source is None:
            # The hybrid's network is a setting: --model STATE.pt would adapt (and run) that network alone.
            instead = (
                f"--set network=PATH/TO/{PACKAGED_SOURCES[name]}"
                if hybrid is not None
                else "--model PATH/TO/state.pt (or --model rtnet --weights FILE)"
            )
            raise InputError(
                f"{name} ships as ONNX only; adapting needs its PyTorch state, {PACKAGED_SOURCES[name]} "
                f"of the rtstereo source repository: pass {instead}"
            )
        note = "; ".join(filter(None, [note, f"{name} is adapted from its PyTorch source, {source}"]))
        name = str(source)
        is_file = True
    if not is_file:
        spec = get_spec(name)
        if spec.kind != "network":
            alias = f"'{model}' stands for {DEFAULT_ALIAS}, " if model in ("", "default") else f"'{spec.name}' is "
            raise InputError(
                f"{alias}a {'classical method' if spec.kind == 'classical' else 'packaged ONNX model'} with no "
                f"trainable weights; adapt a network: --model {PACKAGED_NETWORK}, a checkpoint, or rtnet --weights FILE"
            )
    spec, resolved, module, _ = build_network(name, weights, settings)
    loss_weights = None
    earlier: list[dict[str, Any]] = []
    weights_file = name if is_file else weights
    if weights_file is not None and not is_url(str(weights_file)):
        weights_file = str(Path(weights_file).absolute())  # named as given, "adapted from mine.pt" told where from
    if weights_file is not None:
        # A URL, as predict and export take it: build_network fetched it into the cache, where it is read again
        # (reading the URL as a path said "weights file not found" after the network was built)
        local = fetch(str(weights_file), subdir="weights") if is_url(str(weights_file)) else weights_file
        obj = read_torch_file(local)
        if describe(obj) is not None:
            stored = (obj.get("config") or {}).get("loss_weights")
            loss_weights = [float(w) for w in stored] if stored else None
            if isinstance(obj.get("adaptation"), dict):
                before = [r for r in obj.get("earlier_adaptations") or [] if isinstance(r, dict)]
                earlier = [*before, {"adapted_from": obj.get("adapted_from"), **obj["adaptation"]}]
    return AdaptableNetwork(spec, resolved, module, str(weights_file), loss_weights, note, hybrid_settings, earlier)


def save_adapted(network: AdaptableNetwork, result: AdaptResult, config: AdaptConfig, path: Any) -> None:
    """Write the adapted weights as a self-describing checkpoint (``rtstereo predict --model PATH``)."""
    from ..models.checkpoint import save_checkpoint

    # The weight of each term that ran, defaults too: only those given (--weight) were recorded, so the file did not
    # say what it was trained with once a default changes.
    terms = [*config.losses, *(["synthetic"] if config.synthetic_batch else [])]
    weights = {term: config.weight(term) for term in terms}
    recorded = {**dataclasses.asdict(config), "crop_hw": list(config.crop_hw), "weights": weights}
    save_checkpoint(
        path,
        network.spec.name,
        network.settings,
        network.module.state_dict(),
        **network.provenance(),
        adaptation={**result.to_dict(), "config": recorded},
    )


def describe_adaptation(record: dict[str, Any]) -> list[str]:
    """Lines for ``rtstereo models FILE``: what an adapted checkpoint records of its adaptation (``adapt``'s steps,
    held-out scores and verdict; an online stream's steps and frames), which it left out.

    Examples:
        >>> describe_adaptation({"online": True, "steps": 4, "frames_seen": 60, "worker": "process"})
        ['adapted online: 4 steps on 60 frames (process worker)']
        >>> describe_adaptation({"steps": 2, "interrupted": True, "crop_hw": [64, 128], "seconds": 10.1})
        ['adapted: 2 steps on 64x128 crops (10 s), interrupted before its budget']
        >>> describe_adaptation({"steps": 3, "before": {"photometric": 0.1}, "after": {"photometric": 0.2}})  # older
        ['adapted: 3 steps']
    """
    from ..text import counted
    from .adapt import format_scores

    steps = counted(int(record.get("steps", 0)), "step")
    skipped = record.get("skipped_steps") or 0
    skipped_text = f", {skipped} of them skipped (non-finite loss or gradient)" if skipped else ""
    if record.get("online"):
        worker = f" ({record['worker']} worker)" if record.get("worker") else ""
        frames = counted(int(record.get("frames_seen", 0)), "frame")
        line = f"adapted online: {steps}{skipped_text} on {frames}{worker}"
        for key, what in (("frozen_by", "frozen"), ("error", "stopped")):
            if record.get(key) and (key == "error" or record[key] != "error"):
                line += f"; {what}: {record[key]}"
        return [line]
    crop = record.get("crop_hw")
    crops = f" on {crop[0]}x{crop[1]} crops" if crop else ""
    seconds = f" ({record['seconds']:.0f} s)" if record.get("seconds") is not None else ""
    interrupted = ", interrupted before its budget" if record.get("interrupted") else ""
    lines = [f"adapted: {steps}{skipped_text}{crops}{seconds}{interrupted}"]
    before, after = record.get("before"), record.get("after")
    keys = {"photometric", "lr_disagreement_px", "lr_bad1"}  # format_scores' figures (an older file may lack one)
    if isinstance(before, dict) and isinstance(after, dict) and keys <= set(before) and keys <= set(after):
        scored = "pairs trained on, none held out" if record.get("scored_on_training_pairs") else "held-out pairs"
        lines += [f"before ({scored}): {format_scores(before)}", f"after  ({scored}): {format_scores(after)}"]
    if record.get("scores_worse"):
        lines.append(f"warning: the scores got clearly worse ({'; '.join(record['scores_worse'])})")
    return lines
