"""``rtstereo train``: train a network on generated scenes, fine-tune it on a dataset, or resume a run."""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, RtStereoError, SettingError, require
from .common import check_positive_setting, check_torch_threads, output_path_arg, same_number, whole_number_arg

if TYPE_CHECKING:
    from ..train.config import TrainConfig

EXAMPLES = """examples:
  rtstereo train -o runs/rtnet --steps 200000 --batch-size 8 --device cuda
  rtstereo train --config train.yaml
  torchrun --nproc_per_node 2 -m rtstereo train -c train.yaml   (data-parallel: one process per GPU or CPU group)
  rtstereo train --resume runs/rtnet/last.pt              (continue; nothing else needs repeating)
  rtstereo train --init runs/rtnet/best.pt --data kitti/ --steps 5000 --lr 2e-4 -o runs/kitti-ft
  rtstereo train --init runs/rtnet/best.pt --set half_refinement=true --freeze encoder,match,aggregation,refinement \\
      --loss-weights 0,0,1 -o runs/rtnet-half       (add a stage to a trained network, train only it)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a network (synthetic scenes, or your own dataset)",
        # the epilog keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Train a network on stereo scenes rendered on the fly (or on a dataset folder with "
            "ground truth), with a fixed synthetic validation set, checkpoints (last.pt, best.pt by "
            "validation EPE), a JSON-lines log and a learning-curve PNG. Options come from --config (YAML or "
            "JSON, keys as the long options with underscores) and are overridden by flags given here.",
            width=80,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML or JSON file of training options")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out-dir",
        "-o",
        type=output_path_arg,
        metavar="DIR",
        help="run folder for checkpoints and logs, a path or file:// URL (default: runs/rtnet)",
    )
    run.add_argument("--model", "-m", help="registry name of the network (default: rtnet)")
    run.add_argument(
        "--max-disp",
        type=whole_number_arg,
        metavar="PX",
        help="network disparity range, pixels (model setting max_disp)",
    )
    run.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="other model setting (repeatable)",
    )
    run.add_argument("--init", metavar="CKPT", help="start from this rtstereo checkpoint's weights (fine-tuning)")
    run.add_argument("--resume", metavar="CKPT", help="continue the run of this checkpoint (e.g. runs/rtnet/last.pt)")
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress lines (the start, each logged step, each validation); notes, how the run stopped, "
        "warnings, errors and the result are still shown",
    )
    run.add_argument("--device", help="cpu or cuda[:N] (default: cpu)")
    run.add_argument(
        "--precision",
        choices=("auto", "off", "fp32", "bf16", "fp16"),
        help="mixed precision: off (or fp32, as the other verbs say) trains in fp32 (default: auto = bf16/fp16 on "
        "CUDA, fp32 on CPU)",
    )
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads, >= 1 (default: the config's threads; 0 there is torch's choice)",
    )
    run.add_argument(
        "--seed", metavar="N", type=int, help="seed of initialisation and data, 0 to 2^30 - 1 (default: 0)"
    )
    run.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="run the network through torch.compile (slow start; default: off)",
    )
    run.add_argument(
        "--prefetch",
        action=argparse.BooleanOptionalAction,
        help=(
            "make the next batch in a background thread while a step trains (default: on CUDA devices and under "
            "torchrun; off in one process on a CPU, where the batch and the step share the cores: 5-12 %% slower "
            "on 2 cores)"
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", metavar="DIR", help="dataset folder with ground truth to train on (default: synthetic scenes)"
    )
    data.add_argument(
        "--data-max-disp",
        type=float,
        metavar="PX",
        help="largest disparity of rendered scenes, pixels (default: the network's max_disp)",
    )
    data.add_argument(
        "--noise-scale",
        metavar="X",
        type=float,
        help="sensor noise of rendered scenes (training and validation), times the generator's (default: 1)",
    )
    data.add_argument(
        "--unlabeled",
        metavar="DIR",
        help="folder of real pairs without ground truth (leaf folders of two images) mixed into every batch "
        "with SGBM proxy labels where its left-right check holds ('': none, e.g. to drop a resumed run's)",
    )
    data.add_argument(
        "--unlabeled-per-batch",
        type=int,
        metavar="N",
        help="pairs of each batch taken from --unlabeled (default: a quarter of the batch, rounded down, at least 1)",
    )
    data.add_argument("--crop", dest="crop_hw", metavar="HxW", help="training crop (default: 256x512)")
    data.add_argument("--val-data", metavar="DIR", help="dataset folder to validate on (default: fixed synthetic set)")
    data.add_argument("--val-size", metavar="N", type=int, help="pairs in the synthetic validation set (default: 16)")
    data.add_argument("--val-hw", metavar="HxW", help="size of the synthetic validation pairs (default: 256x512)")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--steps", metavar="N", type=int, help="total optimiser steps (default: 100000)")
    optim.add_argument("--batch-size", "-b", metavar="N", type=int, help="pairs per step (default: 8)")
    optim.add_argument("--lr", metavar="LR", type=float, help="peak learning rate (default: 1e-3)")
    optim.add_argument("--weight-decay", metavar="X", type=float, help="AdamW weight decay (default: 1e-4)")
    optim.add_argument("--warmup-steps", metavar="N", type=int, help="linear warm-up steps (default: 500)")
    optim.add_argument(
        "--loss-weights", metavar="W,W", help="weights of the predictions, coarse to fine (default: 0.5,1.0)"
    )
    optim.add_argument(
        "--loss-region",
        choices=("all", "matchable"),
        help="pixels the loss and validation count: all with ground truth, or matchable (without each row's "
        "left band that the right view does not see) (default: all)",
    )
    optim.add_argument("--grad-clip", metavar="NORM", type=float, help="largest gradient norm, 0 = off (default: 1.0)")
    optim.add_argument(
        "--freeze",
        metavar="PREFIX,...",
        help="keep the weights whose names start with these prefixes fixed, e.g. encoder,aggregation "
        "(default: train everything)",
    )
    every = parser.add_argument_group("schedule of outputs")
    every.add_argument("--log-every", metavar="N", type=int, help="steps between log lines (default: 50)")
    every.add_argument("--val-every", metavar="N", type=int, help="steps between validations (default: 1000)")
    every.add_argument(
        "--checkpoint-every", metavar="N", type=int, help="steps between writes of last.pt (default: 1000)"
    )
    every.add_argument(
        "--checkpoint-minutes",
        type=float,
        metavar="MIN",
        help="also write last.pt every MIN minutes of training (default: 0 = by steps only)",
    )
    every.add_argument(
        "--time-limit",
        dest="time_limit_min",
        type=float,
        metavar="MIN",
        help="stop after MIN minutes of training: validate, write last.pt, end (resume continues; default: none)",
    )
    parser.set_defaults(func=run_train)


def flag_values(args: argparse.Namespace) -> dict:
    """The training options given as flags (``None`` = not given), keyed as in the config."""
    from ..models.registry import coerce_setting

    keys = (
        "out_dir",
        "model",
        "init",
        "resume",
        "device",
        "precision",
        "threads",
        "seed",
        "compile",
        "prefetch",
        "data",
        "data_max_disp",
        "unlabeled",
        "unlabeled_per_batch",
        "noise_scale",
        "crop_hw",
        "val_data",
        "val_size",
        "val_hw",
        "steps",
        "batch_size",
        "lr",
        "weight_decay",
        "warmup_steps",
        "loss_weights",
        "loss_region",
        "grad_clip",
        "log_every",
        "val_every",
        "checkpoint_every",
        "checkpoint_minutes",
        "time_limit_min",
        "freeze",
    )
    values = {key: getattr(args, key) for key in keys}
    settings: dict = {}
    if args.max_disp is not None:
        # As in predict: the flag typed is named, not the network's setting ("rtnet: max_disp must be ...").
        check_positive_setting(args.max_disp, "--max-disp")
        settings["max_disp"] = args.max_disp
    for item in args.set_values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = key.strip(), coerce_setting(key, value.strip(), None)
        if key == "max_disp":
            if args.max_disp is not None and not same_number(args.max_disp, value):  # neither silently wins
                raise InputError(f"--max-disp {args.max_disp} and --set max_disp={value} disagree: give one of them")
            check_positive_setting(value, "--set max_disp")
        settings[key] = value
    values["settings"] = settings or None
    return values


# The flag of each config key whose flag is not simply ``--`` + the key with dashes.
FLAGS = {"crop_hw": "--crop", "time_limit_min": "--time-limit", "settings": "--set"}


def flag_of(key: str) -> str:
    """The command-line flag that sets a config key.

    Examples:
        >>> flag_of("batch_size"), flag_of("crop_hw")
        ('--batch-size', '--crop')
    """
    return FLAGS.get(key, "--" + key.replace("_", "-"))


@contextlib.contextmanager
def flags_named(
    given: dict, setting_flags: dict[str, str] | None = None, defaulted: Collection[str] = ()
) -> Iterator[None]:
    """Name the flag a user typed, not the config key, in an error about a value given as a flag.

    Args:
        given: the config keys given as flags (value not ``None``).
        setting_flags: the flag of each model setting given as one (:func:`setting_flags`), for a
            network that refuses its setting when it is built.
        defaulted: the config keys whose value is the default (given nowhere), which a network found
            later may refuse (``loss_weights``: 0.5,1.0 for a network of four predictions).
    """
    setting_flags = setting_flags or {}
    from ..train.config import ConfigSettingError, TrainConfig

    try:
        yield
    except ConfigSettingError as exc:
        if exc.source is None and exc.setting in defaulted:  # it read "training config 'loss_weights': ..."
            default = getattr(TrainConfig(), exc.setting)
            shown = ",".join(str(v) for v in default) if isinstance(default, tuple) else str(default)
            raise InputError(f"{flag_of(exc.setting)} left out, so its default {shown}: {exc.detail}") from None
        # A value refused while the config file (or a resumed run's config) was read is the file's, not a flag's.
        if exc.source not in (None, "command line") or given.get(exc.setting) is None:
            raise
        raise InputError(f"{flag_of(exc.setting)}: {exc.detail}") from None
    except SettingError as exc:  # a network's own setting (rtnet's max_disp), refused when it is built
        if exc.setting not in setting_flags:
            raise
        raise InputError(f"{setting_flags[exc.setting]}: {exc.detail}") from None


def setting_flags(args: argparse.Namespace) -> dict[str, str]:
    """The flag that gave each model setting on the command line (``--max-disp``, ``--set KEY``)."""
    flags = {key.partition("=")[0].strip(): f"--set {key.partition('=')[0].strip()}" for key in args.set_values}
    if args.max_disp is not None:
        flags["max_disp"] = "--max-disp"
    return flags


def check_model_of_checkpoint(model: str, checkpoint: str, flag: str) -> None:
    """Refuse a ``--model`` that is not the network of the checkpoint a run starts from, which it would
    otherwise silently give way to (the architecture comes from the checkpoint)."""
    from ..models.registry import get_spec
    from ..train.loop import architecture_of

    wanted = get_spec(model).name
    stored = architecture_of(checkpoint)[0]
    if wanted != stored:
        raise InputError(
            f"--model {model}: {flag} {checkpoint} is a checkpoint of {stored}, and the run takes the architecture "
            f"from it: drop --model, or start {wanted} without {flag}"
        )


# What an empty path (an unset shell variable: --init "$CKPT") silently meant: a network from scratch, a new run,
# rendered scenes, the synthetic validation set. A resumed run's --data '' goes back to rendered scenes.
EMPTY_PATH_REFUSED = {
    "init": "checkpoint",
    "resume": "checkpoint",
    "data": "dataset folder",
    "val_data": "dataset folder",
}


# Options that exclude each other, and why; given both as flags, the flags are named (the config's check named its keys:
# "training config: give either 'init' ... or 'resume'").
CONFLICTING_FLAGS = (
    ("init", "resume", "--init starts a new run from a checkpoint's weights, --resume continues the run of one"),
    ("unlabeled", "data", "--unlabeled pairs are mixed into rendered scenes, which --data replaces with its pairs"),
)


def refuse_conflicting_flags(given: dict) -> None:
    """Refuse two flags that exclude each other (:data:`CONFLICTING_FLAGS`) in one line naming them.

    Examples:
        >>> refuse_conflicting_flags({"init": "a.pt", "resume": None})
        >>> refuse_conflicting_flags({"init": "a.pt", "resume": "b.pt"})
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: --init and --resume: --init starts a new run from a checkpoint's weights, \
--resume continues the run of one: give one of them
    """
    for first, second, why in CONFLICTING_FLAGS:
        if given.get(first) and given.get(second):
            raise InputError(f"{flag_of(first)} and {flag_of(second)}: {why}: give one of them")


def refuse_empty_paths(given: dict) -> None:
    """Refuse ``--init ''``, ``--resume ''``, ``--data ''`` (on a new run) and ``--val-data ''`` in one line."""
    for key, what in EMPTY_PATH_REFUSED.items():
        if given.get(key) == "" and not (key == "data" and given.get("resume")):
            raise InputError(f"{flag_of(key)}: the path is empty (an unset shell variable?): give a {what}")


def check_folders_of_resumed_run(config: TrainConfig, given: dict, file_values: dict) -> None:
    """Refuse a resumed run whose training folders, from its own config, are gone, saying which option gives them
    (it read "unlabeled pairs: folder not found: DIR", a folder the command had not named)."""
    folders = (
        ("data", "trained on", ""),
        ("unlabeled", "trained on", ", or --unlabeled '' to go on with rendered scenes only"),
        ("val_data", "validated on", ""),
    )
    for key, did, drop in folders:
        folder, flag = getattr(config, key), "--" + key.replace("_", "-")
        if folder and given.get(key) is None and key not in file_values and not Path(folder).exists():
            raise InputError(
                f"--resume {config.resume}: its run {did} {flag} {folder}, which is not found here: give "
                f"{flag} with where that folder is now{drop}"
            )


def check_dataset_folders(config: TrainConfig) -> None:
    """Refuse a ``--data`` or ``--val-data`` folder that is not there, naming the option: the reader's "dataset folder
    not found: X" did not say which of the two X was given to."""
    for key in ("data", "val_data"):
        folder = getattr(config, key)
        if folder and not Path(folder).exists():
            raise InputError(f"{flag_of(key)}: dataset folder not found: {Path(folder).absolute()}")


# The lines of rtstereo.train.loop that say how the run goes; the others (notes, a time limit reached, how a stopped
# run goes on, nothing to train) say something the user must act on or know, and --quiet keeps them.
PROGRESS_LINES = ("training ", "step ", "validation set: ", "proxy labels: ")


def _without_progress(echo: Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` without the progress lines (:data:`PROGRESS_LINES`), for ``--quiet``.

    Examples:
        >>> said = []
        >>> quiet = _without_progress(said.append)
        >>> for line in ("step 50/100: loss 0.5", "note: matplotlib is not installed", "stopped at step 3"):
        ...     quiet(line)
        >>> said
        ['note: matplotlib is not installed', 'stopped at step 3']
    """

    def echo_unless_progress(line: str) -> None:
        if not line.startswith(PROGRESS_LINES):
            echo(line)

    return echo_unless_progress


def run_train(args: argparse.Namespace) -> int:
    require("torch", "torch", "training")
    from ..train.config import FIELDS, read_config_file, resolve_config
    from ..train.loop import train

    check_torch_threads(args.threads)
    file_values = read_config_file(args.config) if args.config else {}
    given = flag_values(args)
    refuse_empty_paths(given)
    refuse_conflicting_flags(given)
    with flags_named(given):
        config = resolve_config(file_values, given)
    if config.resume:
        check_folders_of_resumed_run(config, given, file_values)
    check_dataset_folders(config)
    if args.model is not None and (config.init or config.resume):
        check_model_of_checkpoint(args.model, config.init or config.resume, "--init" if config.init else "--resume")
    if args.unlabeled_per_batch is not None and not config.unlabeled:
        raise InputError("--unlabeled-per-batch takes pairs from --unlabeled DIR: give that folder too")
    synthetic_only = [flag for flag, value in (("--val-size", args.val_size), ("--val-hw", args.val_hw)) if value]
    if synthetic_only and config.val_data:
        raise InputError(
            f"{' and '.join(synthetic_only)} {'shape' if len(synthetic_only) > 1 else 'shapes'} the synthetic "
            f"validation set, which --val-data {config.val_data} "
            "replaces (its pairs are scored whole): drop one or the other"
        )
    rendering = [
        flag
        for flag, value in (("--data-max-disp", args.data_max_disp), ("--noise-scale", args.noise_scale))
        if value is not None
    ]
    if rendering and config.data and config.val_data:  # they were taken and ignored
        raise InputError(
            f"{' and '.join(rendering)} {'shape' if len(rendering) > 1 else 'shapes'} the rendered scenes, and "
            f"with --data {config.data} and --val-data {config.val_data} none is rendered (training and validation "
            "read those folders): drop one or the other"
        )
    from .common import progress_echo

    # Not given anywhere: the default (a resumed run has its own config's values).
    defaulted = () if config.resume else {key for key in FIELDS if given.get(key) is None and key not in file_values}
    try:
        with flags_named(given, setting_flags(args), defaulted):
            echo = progress_echo("train")  # progress on stderr; stdout has the result line
            summary = train(config, echo=_without_progress(echo) if args.quiet else echo)
    except (RtStereoError, KeyboardInterrupt):
        raise
    except Exception as exc:
        from ..train.distributed import rank_failure, ranks_from_environment

        ranks = ranks_from_environment()
        if not ranks.distributed:
            raise
        # One line per rank: torchrun's own report, printed after, names the rank that failed first.
        print(f"rtstereo train: error: {rank_failure(exc, ranks)}", file=sys.stderr)
        return 1
    if summary["rank"] != 0:  # data-parallel: rank 0 reports for all
        return 0
    best, files = summary["best"], summary["files"]
    # Only the files there: a run resumed into another folder with nothing to train writes no best.pt, and
    # without matplotlib there is no curve.
    checkpoints = [files[name] for name in ("last", "best") if Path(files[name]).is_file()]
    curve = f", curve {files['curve']}" if Path(files["curve"]).is_file() else ""
    print(
        f"done: step {summary['step']}, best validation EPE {best['epe']:.3f} px at step {best['step']}; "
        f"checkpoint{'s' if len(checkpoints) > 1 else ''} {' and '.join(checkpoints)}{curve}"
    )
    return 0
