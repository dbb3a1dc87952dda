"""``--adapt`` on ``rtstereo video`` and ``rtstereo live``: the options, and the predictor they build.

The machinery is :mod:`rtstereo.train.online`; this module turns the command line into it.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..errors import InputError, require
from .common import ADAPTED_CHECKPOINT_SUFFIXES, check_output_file, output_path_arg, size_arg

FREEZE_KEY = "f"
# The options' defaults, applied only with --adapt: None on the command line tells an option given without it.
DEFAULTS: dict[str, Any] = {
    "adapt_every": 10,
    "adapt_lr": 5e-5,
    "adapt_crop": (128, 256),
    "adapt_priority": "low",
    "adapt_worker": "process",
    "adapt_threads": 1,
    "adapt_losses": "photometric,smoothness",
}


def add_adapt_args(parser: argparse.ArgumentParser) -> None:
    """The ``--adapt*`` options."""
    group = parser.add_argument_group(
        "online adaptation (a PyTorch network: rtnet-v5 from a source checkout, a checkpoint, rtnet --weights)"
    )
    group.add_argument(
        "--adapt",
        action="store_true",
        help="adapt the network to these frames while the stream runs: a step in the background (a child process "
        "by default, --adapt-worker) every "
        f"--adapt-every frames, the new weights swapped in between frames; key {FREEZE_KEY} in the window "
        "freezes/resumes (measured on rendered streams it made the maps worse: check the result, see the README)",
    )
    group.add_argument(
        "--adapt-every", type=int, metavar="N", help=f"frames between steps (default: {DEFAULTS['adapt_every']})"
    )
    group.add_argument("--adapt-steps", type=int, metavar="N", help="freeze the weights after N steps")
    group.add_argument("--adapt-until", type=float, metavar="SECONDS", help="freeze the weights after SECONDS")
    group.add_argument(
        "--adapt-save",
        type=output_path_arg,
        metavar="FILE.pt",
        help="write the adapted weights at the end as a checkpoint (rtstereo predict --model FILE.pt)",
    )
    group.add_argument("--adapt-lr", metavar="LR", type=float, help=f"learning rate (default: {DEFAULTS['adapt_lr']})")
    group.add_argument(
        "--adapt-crop",
        type=size_arg,
        metavar="HxW",
        help="crop of the frame each step trains on (default: 128x256)",
    )
    group.add_argument(
        "--adapt-priority",
        choices=("low", "normal"),
        help="CPU priority of the adapter (its process or thread): low (nice 19: the stream keeps the cores, "
        f"steps are slower on a busy CPU) or normal (default: {DEFAULTS['adapt_priority']})",
    )
    group.add_argument(
        "--adapt-worker",
        choices=("process", "thread"),
        help="where the steps run: a child process (never holds the stream's interpreter lock) or a thread "
        f"of the stream's process (default: {DEFAULTS['adapt_worker']})",
    )
    group.add_argument(
        "--adapt-threads",
        type=int,
        metavar="N",
        help=f"CPU threads of the adapter (default: {DEFAULTS['adapt_threads']})",
    )
    group.add_argument(
        "--adapt-losses",
        metavar="TERM,...",
        help="terms, from photometric, smoothness, consistency, proxy (SGBM on each frame used) (default: "
        f"{DEFAULTS['adapt_losses']})",
    )


def stream_predictor(args: argparse.Namespace, build: Any) -> tuple[Any, Any]:
    """``(predictor, adaptation_sink_or_None)``: ``build(args)`` without ``--adapt``, else the trainable
    network served by a predictor whose weights the returned sink's adapter updates.

    Raises:
        InputError: an ``--adapt-*`` option without ``--adapt``, ``--adapt`` with a model that has no
            PyTorch weights to train, or a bad setting.
    """
    if not getattr(args, "adapt", False):
        refuse_stray_adapt_options(args)
        return build(args), None
    args = argparse.Namespace(**{**vars(args), **{k: v for k, v in DEFAULTS.items() if getattr(args, k) is None}})
    if args.adapt_save is not None:
        check_adapt_save(args.adapt_save)
    require("torch", "torch", "online adaptation (--adapt)")
    from ..train.online import AdaptationSink, OnlineConfig, adapting_predictor
    from .common import settings_from_args

    if args.backend not in (None, "torch"):
        raise InputError(
            f"--adapt trains the PyTorch network while it serves the stream: drop --backend {args.backend} "
            "(it runs on the torch backend)"
        )
    config = OnlineConfig(
        every=args.adapt_every,
        steps=args.adapt_steps,
        until_s=args.adapt_until,
        losses=tuple(name.strip() for name in args.adapt_losses.split(",") if name.strip()),
        crop_hw=args.adapt_crop,
        lr=args.adapt_lr,
        threads=args.adapt_threads,
        low_priority=args.adapt_priority == "low",
        worker=args.adapt_worker,
    )
    try:
        predictor, adapter = adapting_predictor(
            args.model, args.weights, settings_from_args(args), args.device, args.precision, config
        )
    except InputError as exc:
        raise InputError(f"--adapt: {exc}") from None
    return predictor, AdaptationSink(adapter, args.adapt_save, start=False)  # started once the outputs are made


def refuse_stray_adapt_options(args: argparse.Namespace) -> None:
    """Refuse ``--adapt-*`` options given without ``--adapt`` (they would be ignored).

    Raises:
        InputError: naming them.
    """
    if getattr(args, "adapt", False):
        return
    given = ("adapt_steps", "adapt_until", "adapt_save", *DEFAULTS)
    stray = [f"--{name.replace('_', '-')}" for name in given if getattr(args, name, None) is not None]
    if stray:
        raise InputError(f"{', '.join(stray)}: online adaptation options; add --adapt")


def check_adapt_save(path: str) -> None:
    """Refuse an ``--adapt-save`` file that would be written wrongly or not at all, before the stream starts.

    Raises:
        InputError: not a checkpoint suffix (``.onnx`` would hold a checkpoint no ONNX reader opens,
            ``.mp4`` could be the input video).
        OutputError: a folder, or a place that cannot be written.
    """
    from pathlib import Path

    if Path(path).suffix.lower() not in ADAPTED_CHECKPOINT_SUFFIXES:
        suffixes = ", ".join(ADAPTED_CHECKPOINT_SUFFIXES)
        raise InputError(
            f"--adapt-save {path}: the adapted weights go to a PyTorch checkpoint ({suffixes}); "
            "export it afterwards with rtstereo export FILE.pt"
        )
    check_output_file(path, "--adapt-save")


def bind_freeze_key(window: Any, sink: Any) -> None:
    """Key ``f`` in the window freezes and resumes the adaptation (windows with a ``keys`` table)."""
    if window is None or sink is None or not hasattr(window, "keys"):
        return
    window.keys[ord(FREEZE_KEY)] = sink.adapter.toggle_freeze
    logging.getLogger("rtstereo.stream").info("--adapt: press %s in the window to freeze or resume", FREEZE_KEY)
