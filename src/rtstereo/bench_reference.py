"""Quality against speed on pairs without ground truth: every row scored against a reference model.

The CREStereo seed's study: run a model at several iteration counts and sizes, and score each setting's map
of a pair against the map of the most accurate setting (the *reference*) on the same pair, so that pairs with
no ground truth still say how much each step down in cost loses. ``rtstereo bench MODELS --data PAIRS
--reference MODEL[:KEY=VALUE,...]`` does it:

- the reference runs once per pair, before the sweep (so that its time and memory are not the rows'), at its
  own size: the pair's, or ``size=HxW`` in its settings, or a fixed-size export's own size;
- a row runs on the pair resized to the row's size; its map is brought to the reference's size (interpolated
  over its valid pixels) and its disparities multiplied by the width ratio, so that both are in pixels of
  the same image;
- EPE and bad-N are taken over the pixels where the reference's map is valid (finite and above 0); a pixel
  the row leaves invalid there counts as wrong, as against ground truth (:func:`rtstereo.metrics.disparity_metrics`);
- a pair the reference fails on (an unreadable image, a map without a valid pixel) is left out of every
  row's score, with a note; when it fails on every pair the sweep is refused before it starts.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .errors import DatasetError, InputError, RtStereoError, parse_size_hw
from .metrics import disparity_metrics, mean_metrics
from .sources.pairs import PairSource
from .text import counted

if TYPE_CHECKING:
    from .models.registry import ModelSpec

#: The scores of a row against the reference, as ``BenchRow.accuracy`` holds them.
REFERENCE_KEYS = ("epe", "bad-1", "bad-2")
MANIFEST_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Reference:
    """The model whose maps the rows are scored against.

    Attributes:
        model: registry name, alias, exported ``.onnx`` file or rtstereo checkpoint.
        settings: its settings, as given (``(("iters", "20"),)``), then as the loaded model took them
            (``(("iters", 20),)``: :func:`compute_reference_maps`); the model's defaults for the rest.
        size_hw: the ``(H, W)`` it runs at; ``None``: each pair's own size (a fixed-size export: its own).
    """

    model: str
    settings: tuple[tuple[str, str], ...] = ()
    size_hw: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        """How tables and notes name it.

        Examples:
            >>> Reference("sgbm", (("max_disp", "64"),), (240, 320)).label
            'sgbm max_disp=64 at 320x240'
            >>> Reference("sgbm").label
            "sgbm at each pair's own size"
        """
        size = f"at {self.size_hw[1]}x{self.size_hw[0]}" if self.size_hw else "at each pair's own size"
        return " ".join([self.model, *(f"{k}={setting_text(v)}" for k, v in self.settings), size])

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "settings": dict(self.settings), "size_hw": self.size_hw and list(self.size_hw)}


def setting_text(value: Any) -> str:
    """A setting as the command line writes it: ``true``, not Python's ``True``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _split_settings(text: str) -> list[str] | None:
    """``text`` cut at its commas, but not at those inside quotes (``providers="cuda,cpu"``); ``None`` when a quote
    is not closed.

    Examples:
        >>> _split_settings("max_disp=64,providers='cuda,cpu',")
        ['max_disp=64', "providers='cuda,cpu'", '']
    """
    items, current, quote = [], "", None
    for char in text:
        if quote is None and char == ",":
            items.append(current.strip())
            current = ""
            continue
        if quote is None and char in "\"'":
            quote = char
        elif char == quote:
            quote = None
        current += char
    return None if quote is not None else [*items, current.strip()]


def parse_reference(text: str) -> Reference:
    """``MODEL[:KEY=VALUE,KEY=VALUE...]`` (``--reference``); ``size=HxW`` is the size it runs at. Commas part the
    settings: a value that holds one is quoted (``providers="cuda,cpu"``).

    Raises:
        InputError: an empty model, settings that are not ``KEY=VALUE``, or an unclosed quote.

    Examples:
        >>> parse_reference("sgbm:max_disp=128,size=240x320")
        Reference(model='sgbm', settings=(('max_disp', '128'),), size_hw=(240, 320))
        >>> parse_reference("net.onnx:providers='cuda,cpu',threads=2").settings
        (('providers', 'cuda,cpu'), ('threads', '2'))
        >>> parse_reference("crestereo_combined_iter20_480x640.onnx")
        Reference(model='crestereo_combined_iter20_480x640.onnx', settings=(), size_hw=None)
    """
    from .models import resolve_alias

    model, sep, rest = str(text).partition(":")
    if not sep or Path(text).exists():  # a file whose name holds a colon is that file
        model, rest = str(text), ""
    model = model.strip()
    if not model:
        raise InputError(f"--reference '{text}': expected MODEL[:KEY=VALUE,...], e.g. sgbm:max_disp=256")
    settings: dict[str, str] = {}
    size_hw = None
    items = _split_settings(rest) if rest.strip() else []
    if items is None:
        raise InputError(
            f"--reference '{text}': a quote is not closed (a value that holds commas is quoted: KEY=\"A,B\")"
        )
    for item in items:
        key, eq, value = item.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not eq or not key or not value.strip():
            hint = ""
            if settings and item and not eq:  # "cpu" of providers=cuda,cpu: a value cut at its comma
                hint = f" (commas part the settings: quote a value that holds one, {settings_hint(item, settings)})"
            raise InputError(f"--reference '{text}': expected MODEL[:KEY=VALUE,...], got '{item}'{hint}")
        if key in settings or (key == "size" and size_hw is not None):
            raise InputError(f"--reference '{text}': {key} is given twice")
        if key == "size":
            size_hw = parse_size_hw(value.strip(), "--reference size")
        else:
            settings[key] = value
    return Reference(resolve_alias(model), tuple(settings.items()), size_hw)


def settings_hint(item: str, settings: dict[str, str]) -> str:
    """How to write the value that a stray ``item`` probably belonged to, the last setting read before it.

    Examples:
        >>> settings_hint("cpu", {"providers": "cuda"})
        'providers="cuda,cpu"'
    """
    key, value = list(settings.items())[-1]
    return f'{key}="{value},{item}"'


def pairs_of(data: Sequence[str | Path | Sequence[str]]) -> tuple[list[PairSource], list[str]]:
    """The pairs that ``--data`` names, ground truth or not.

    Args:
        data: each item a dataset folder (any layout :func:`rtstereo.datasets.find_samples` knows; its ground
            truth is not used), a ``.csv`` or ``.parquet`` manifest (``left,right[,name]``), or a ``(LEFT,
            RIGHT)`` pair of files, folders or globs, as ``rtstereo predict`` takes them.

    Returns:
        ``(pairs, notes)``: the notes say which scenes' ground truth is not used and which scenes a dataset
        could not give (a missing image, a damaged ``calib.txt``).

    Raises:
        InputError: an item of another form, or one that names no pair.
    """
    from .datasets import find_samples
    from .sources.manifest import RepeatedPairWarning, read_manifest
    from .sources.pairs import resolve_pairs

    pairs: list[PairSource] = []
    notes: list[str] = []
    with_truth = 0
    for item in data:
        if not isinstance(item, (str, Path)):
            values = [str(v) for v in item]
            if len(values) == 1:
                item = values[0]
            elif len(values) == 2:
                check_not_two_datasets(values)
                try:
                    pairs += resolve_pairs(*values)
                except InputError as exc:  # which option's LEFT RIGHT: the message names a side only
                    raise InputError(f"--data {values[0]} {values[1]}: {exc}") from None
                continue
            else:
                raise InputError(
                    f"--data {' '.join(values)}: expected a dataset folder, a manifest, or LEFT RIGHT (two values; "
                    f"got {len(values)}: a glob the shell expanded? quote it, '{Path(values[0]).parent}/*.png')"
                )
        if Path(item).suffix.lower() in MANIFEST_SUFFIXES and not Path(item).is_dir():
            with warnings.catch_warnings():  # its pairs listed again are scored once: said below, not "own files"
                warnings.simplefilter("ignore", RepeatedPairWarning)
                pairs += read_manifest(item)
            continue
        try:
            samples = find_samples(item)
        except DatasetError as exc:  # a folder of one camera's images is no dataset: its pairs need both sides
            raise DatasetError(
                f"--data {item}: {exc}; or, for pairs without ground truth, give both cameras: --data LEFT RIGHT "
                "(two folders, files or quoted globs)"
            ) from None
        with_truth += sum(s.gt_path is not None for s in samples)
        broken = [s for s in samples if s.problem is not None]
        if broken:
            notes.append(
                f"{counted(len(broken), 'scene')} of --data {item} left out (first: {broken[0].name}: "
                f"{broken[0].problem})"
            )
        pairs += [PairSource(str(s.left_path), str(s.right_path), s.name) for s in samples if s.problem is None]
    if with_truth:  # --reference and ground truth: say which one the scores are against
        notes.append(
            f"{counted(with_truth, 'scene')} of --data {'has' if with_truth == 1 else 'have'} ground truth, not "
            "used: the rows are scored against the reference (drop --reference to score against the ground truth)"
        )
    if not pairs:
        raise InputError(f"--data: no pair to score against the reference{' (' + notes[0] + ')' if notes else ''}")
    distinct, again = _distinct_pairs(pairs)
    if again:  # left out without a word: the pairs scored were fewer than those listed
        notes.append(
            f"{counted(len(again), 'pair')} of --data listed again (first: {again[0]}), scored once: each pair weighs "
            "once in the means"
        )
    return distinct, notes


def _distinct_pairs(pairs: list[PairSource]) -> tuple[list[PairSource], list[str]]:
    """Each pair once (one given under two ``--data``, or twice in a manifest, would weigh twice in the mean),
    and names that tell them apart: two ``--data`` of one layout both have a ``000000``, and a pair is named
    in the notes and in the JSON's ``failed`` by its name; and the pairs left out, each as ``NAME (as NAME)``.

    Examples:
        >>> given = [PairSource("a/0.png", "b/0.png", "0"), PairSource("c/0.png", "d/0.png", "0")]
        >>> kept, again = _distinct_pairs([*given, dataclasses.replace(given[0], name="zero")])
        >>> [p.name for p in kept], again
        (['0', '0 (2)'], ['zero (as 0)'])
    """
    import os

    from .io.download import is_url

    seen: dict[tuple[str, ...], str] = {}
    names: set[str] = set()
    out = []
    again = []
    for pair in pairs:
        key = tuple(side if is_url(side) else os.path.realpath(side) for side in (pair.left, pair.right))
        if key in seen:
            again.append(f"{pair.name} (as {seen[key]})")
            continue
        name, count = pair.name, 1
        while name in names:
            count += 1
            name = f"{pair.name} ({count})"
        names.add(name)
        seen[key] = name
        out.append(dataclasses.replace(pair, name=name))
    return out, again


def check_not_two_datasets(values: Sequence[str]) -> None:
    """Refuse ``--data D1 D2`` where both are folders without images of their own (dataset roots): two values
    after one ``--data`` are LEFT RIGHT, and ``--data real validation`` was taken for a pair of camera folders.

    Raises:
        InputError: both values are folders that hold no image directly.
    """
    from .datasets.readers import IMAGE_SUFFIXES

    def holds_images(folder: Path) -> bool:
        return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())

    folders = [Path(v).expanduser() for v in values]
    try:
        datasets = all(f.is_dir() and not holds_images(f) for f in folders)
    except OSError:  # an unreadable folder: the pairs' own reading says so
        return
    if datasets:
        first, second = values
        raise InputError(
            f"--data {first} {second}: two values after one --data are LEFT RIGHT, the folders (or globs) of a "
            f"pair's images, and neither holds images; for two dataset folders write --data {first} --data {second}"
        )


@dataclass
class ReferenceMap:
    """The reference's map of one pair: float32 ``(H, W)`` pixels at the reference's size, ``nan`` invalid;
    ``pair_hw``: the pair's own ``(H, W)`` (``None``: the map's)."""

    source: PairSource
    disparity_px: np.ndarray
    pair_hw: tuple[int, int] | None = None


@dataclass
class ReferenceMaps:
    """The reference's maps of the pairs it ran on, and why it failed on the others (``{name: reason}``)."""

    reference: Reference
    maps: list[ReferenceMap]
    failed: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.reference.to_json(),
            "pairs": [m.source.name for m in self.maps],
            "sizes_hw": [list(m.disparity_px.shape) for m in self.maps],
            "failed": dict(self.failed),
        }


def reference_predictor(
    reference: Reference, weights: str | Path | None, device: str, threads: int | None
) -> tuple[Any, tuple[int, int] | None]:
    """The reference's predictor and the size it runs at (``None``: each pair's own).

    Raises:
        InputError: an unknown model or setting, a network without weights, or a ``size=`` other than a
            fixed-size export's own.
    """
    from .api import load
    from .models import is_onnx_file

    settings: dict[str, Any] = dict(reference.settings)
    takes_threads = is_onnx_file(reference.model) or model_spec(reference.model).kind in ("onnx", "hybrid")
    if takes_threads and threads is not None:
        settings["threads"] = threads
    try:
        predictor = load(reference.model, weights=weights, device=device, settings=settings)
    except RtStereoError as exc:
        raise type(exc)(f"--reference {reference.model}: {exc}") from None
    fixed = getattr(predictor, "fixed_size_hw", None)
    size_hw = reference.size_hw
    if fixed is not None:
        fixed = (int(fixed[0]), int(fixed[1]))
        if size_hw is not None and size_hw != fixed:  # it would resize again inside: not the size asked for
            raise InputError(
                f"--reference {reference.model} is fixed at {fixed[0]}x{fixed[1]} (HxW): drop size= or give "
                f"size={fixed[0]}x{fixed[1]}"
            )
        size_hw = fixed
    return predictor, size_hw


def compute_reference_maps(
    reference: Reference,
    pairs: Sequence[PairSource],
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReferenceMaps:
    """Run the reference once on each pair, at its size.

    A pair it fails on (an image that cannot be read, two views of different sizes, a map with no valid
    pixel) is recorded in :attr:`ReferenceMaps.failed` and left out.

    Raises:
        InputError: the reference cannot be built (see :func:`reference_predictor`), or it failed on every pair.
    """
    from .batch.job import failure_reason, refuse_one_picture

    predictor, size_hw = reference_predictor(reference, weights, device, threads)
    # a fixed-size export runs at its own size: the notes and bench.json name it, not "each pair's own size";
    # its settings as the model took them (64, true), not the text given (bench.json held "64", "true")
    reference = dataclasses.replace(reference, size_hw=size_hw, settings=typed_settings(reference.settings, predictor))
    maps: list[ReferenceMap] = []
    failed: dict[str, str] = {}
    for index, source in enumerate(pairs):
        if progress is not None:
            progress(f"reference {reference.model}: pair {index + 1} of {len(pairs)} ({source.name})")
        try:
            pair = source.load(index)
            refuse_one_picture(pair.left, pair.right)  # it read "its map has no valid pixel", a map of 0 everywhere
            disparity = disparity_at(predictor, pair.left, pair.right, size_hw or pair.left.shape[:2])
            with np.errstate(invalid="ignore"):
                if not (np.isfinite(disparity) & (disparity > 0)).any():
                    raise InputError("its map has no valid pixel (none finite and above 0)")
        except Exception as exc:  # one bad pair is left out, not the sweep
            failed[source.name] = failure_reason(exc)
            continue
        maps.append(ReferenceMap(source, disparity, (int(pair.left.shape[0]), int(pair.left.shape[1]))))
    if not maps:
        name, reason = next(iter(failed.items()))
        raise InputError(
            f"--reference {reference.label} failed on every pair of --data ({len(failed)}; first: {name}: {reason}): "
            "nothing to score the rows against"
        )
    return ReferenceMaps(reference, maps, failed)


def typed_settings(settings: tuple[tuple[str, Any], ...], predictor: Any) -> tuple[tuple[str, Any], ...]:
    """``settings``, given as text, each of the type the loaded ``predictor`` holds it in (its ``settings``; the
    post-processing switches are bools); one it does not hold stays as given.

    Examples:
        >>> class Loaded:
        ...     settings = {"max_disp": 64, "fill_holes": False}
        >>> typed_settings((("max_disp", "64"), ("fill_holes", "off"), ("refine_edges", "true")), Loaded())
        (('max_disp', 64), ('fill_holes', False), ('refine_edges', True))
    """
    from .models.registry import coerce_setting
    from .runtime.postprocess import POSTPROCESS_SETTINGS

    held = getattr(predictor, "settings", None)
    held = held if isinstance(held, dict) else {}
    typed = []
    for key, value in settings:
        if key in held and held[key] is not None:
            value = coerce_setting(key, value, held[key])
        elif key in POSTPROCESS_SETTINGS:
            value = coerce_setting(key, value, False)
        typed.append((key, value))
    return tuple(typed)


def disparity_at(predictor: Any, left: np.ndarray, right: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
    """The predictor's map of the pair run at ``size_hw``, in pixels of an image of that size.

    Args:
        left, right: uint8 RGB ``(H, W, 3)``, resized to ``size_hw`` (area when shrinking, bilinear otherwise).
        size_hw: ``(H, W)`` to run at.

    Returns:
        float32 ``(size_hw)``, ``nan`` where invalid; the predictor's own map, scaled back to ``size_hw`` by the
        width ratio where it ran at yet another size itself (a memory budget).
    """
    height, width = int(size_hw[0]), int(size_hw[1])
    disparity = np.asarray(predictor.predict(*views_at(left, right, size_hw)).disparity_px, np.float32)
    return disparity if disparity.shape == (height, width) else resize_disparity(disparity, (height, width))


def stretched_pairs_notes(maps: ReferenceMaps, sizes_hw: Sequence[Sequence[int]]) -> list[str]:
    """A note when the rows' sizes, or the reference's own (``size=``, a fixed-size export), have another aspect
    ratio than the pairs (more than 1 % apart): each pair is then stretched to that size, which ``--sizes`` or
    ``--reference`` asks for but the table does not show.

    Examples:
        >>> source = PairSource("l.png", "r.png", "urban1")
        >>> maps = ReferenceMaps(Reference("sgbm"), [ReferenceMap(source, np.zeros((391, 1344), np.float32))], {})
        >>> stretched_pairs_notes(maps, [(240, 320)])[0].split(":")[:2]
        ['1 pair of --data is stretched to rows of another aspect ratio (urban1', ' 1344x391 run at 320x240, WxH)']
        >>> stretched_pairs_notes(maps, [(196, 672)])
        []
    """
    named_hw = [(item.source.name, item.pair_hw or item.disparity_px.shape) for item in maps.maps]
    return stretched_notes(named_hw, sizes_hw, maps.reference.size_hw)


def stretched_notes(
    named_hw: Sequence[tuple[str, Sequence[int]]],
    sizes_hw: Sequence[Sequence[int]],
    reference_hw: Sequence[int] | None = None,
    what: str = "pair",
) -> list[str]:
    """A note when ``sizes_hw`` (the rows'), or ``reference_hw``, have another aspect ratio than some of the pairs
    (``(name, (H, W))`` each) more than 1 % apart; ``what`` names them (``pair``, ``scene``).

    Examples:
        >>> stretched_notes([("tsukuba", (288, 384))], [(480, 640), (376, 1240)], what="scene")[0].split(":")[:2]
        ['1 scene of --data is stretched to rows of another aspect ratio (tsukuba', ' 384x288 run at 1240x376, WxH)']
    """
    stretched = {}
    to_reference = to_rows = False
    for name, (height, width) in named_hw:
        rows = [s for s in sizes_hw if _another_aspect_ratio(s, (height, width))]
        reference = reference_hw is not None and _another_aspect_ratio(reference_hw, (height, width))
        to_rows, to_reference = to_rows or bool(rows), to_reference or reference
        if rows or reference:
            stretched[name] = (width, height, rows[0] if rows else reference_hw)
    if not stretched:
        return []
    name, (width, height, size) = next(iter(stretched.items()))
    sizes = " and ".join(part for part, said in (("the reference's size", to_reference), ("rows", to_rows)) if said)
    keep = "--sizes" + (" and a size= (or a fixed-size file)" if to_reference else "")
    return [
        f"{counted(len(stretched), what)} of --data {'is' if len(stretched) == 1 else 'are'} stretched to {sizes} of "
        f"another aspect ratio ({name}: {width}x{height} run at {size[1]}x{size[0]}, WxH): the scores hold (disparity "
        f"runs along the width, scaled by its ratio), but the methods see distorted pairs; {keep} of the {what}s' "
        "aspect ratio keep their shape"
    ]


def _another_aspect_ratio(size_hw: Sequence[int], pair_hw: Sequence[int]) -> bool:
    """Whether ``size_hw`` stretches a pair of ``pair_hw`` (aspect ratios more than 1 % apart)."""
    return abs((size_hw[1] / size_hw[0]) / (pair_hw[1] / pair_hw[0]) - 1) > 0.01


def score_against_reference(predictor: Any, run_hw: Sequence[int], maps: ReferenceMaps) -> dict[str, float]:
    """A row's mean EPE and bad-N against the reference's maps (each pair weighs the same).

    Args:
        predictor: the row's predictor.
        run_hw: the row's size: each pair is resized to it, and the map brought back to the reference's size.
        maps: the reference's maps (:func:`compute_reference_maps`).

    Returns:
        ``{"epe": px, "bad-1": %, "bad-2": %}`` over the pixels where the reference is valid.
    """
    scores = []
    for index, item in enumerate(maps.maps):
        pair = item.source.load(index)
        disparity = disparity_at(predictor, pair.left, pair.right, run_hw)
        if disparity.shape != item.disparity_px.shape:
            disparity = resize_disparity(disparity, item.disparity_px.shape)
        scores.append(disparity_metrics(disparity, item.disparity_px))
    mean = mean_metrics(scores)
    return {key: float(mean[key]) for key in REFERENCE_KEYS}


def _is_checkpoint(model: str) -> bool:
    from .models import is_onnx_file

    return not is_onnx_file(model) and Path(model).suffix != "" and Path(model).is_file()


def model_spec(model: str) -> ModelSpec:
    """The registry entry of a model argument: a registry name, an alias, or a self-describing
    rtstereo checkpoint (the entry of the model it names)."""
    from .api import FAILED_EXPORT_SUFFIX, failed_export_advice
    from .models import get_spec, resolve_alias

    if model.lower().endswith(FAILED_EXPORT_SUFFIX):
        raise InputError(f"model {failed_export_advice(model)}")
    if not _is_checkpoint(model):
        return get_spec(resolve_alias(model))
    return get_spec(_checkpoint_model(str(Path(model).resolve())))


@functools.lru_cache(maxsize=16)
def _checkpoint_model(path: str) -> str:
    from .models.checkpoint import read_self_describing

    _, (model, _) = read_self_describing(
        path,
        "it holds {network} weights: bench {network} with --weights {path}",
        "bench a registry name with --weights FILE for the published networks' own files",
    )
    return model


def views_at(left: np.ndarray, right: np.ndarray, size_hw: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Both views resized to ``size_hw`` (area when shrinking, bilinear otherwise), or as they are at that size."""
    height, width = int(size_hw[0]), int(size_hw[1])
    if left.shape[:2] == (height, width):
        return left, right
    interpolation = cv2.INTER_AREA if width < left.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(left, (width, height), interpolation=interpolation), cv2.resize(
        right, (width, height), interpolation=interpolation
    )


def resize_disparity(disparity_px: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
    """A disparity map at another size, in pixels of an image of that size.

    Bilinear interpolation over the valid pixels, multiplied by ``W_out / W_in``; pixels invalid at the
    input's size stay invalid.

    Args:
        disparity_px: float ``(h, w)`` pixels, ``nan`` where invalid.
        size_hw: ``(H, W)`` wanted.

    Returns:
        float32 ``(H, W)``.

    Examples:
        >>> resize_disparity(np.full((2, 4), 3.0, np.float32), (4, 8))[0, :3]
        array([6., 6., 6.], dtype=float32)
    """
    height, width = int(size_hw[0]), int(size_hw[1])
    valid = np.isfinite(disparity_px)
    # Normalised interpolation: holes neither bleed zeros into their neighbours nor spread.
    size = (width, height)
    weight = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    filled = np.where(valid, disparity_px, 0).astype(np.float32)
    total = cv2.resize(filled, size, interpolation=cv2.INTER_LINEAR)
    nearest_valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    keep = nearest_valid.astype(bool) & (weight > 0)
    full = np.full((height, width), np.nan, np.float32)
    full[keep] = total[keep] / weight[keep] * (width / disparity_px.shape[1])
    return full
