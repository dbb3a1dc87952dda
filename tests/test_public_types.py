"""The public API's annotations say what the code takes and returns: the package ships ``py.typed``, so mypy and IDEs
check users' code against them, and an annotation narrower than the code (``str`` where a ``Path`` works) is an error
in a correct script."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from rtstereo.runtime.hybrid import HybridPredictor
from rtstereo.runtime.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]


def _hints(obj: typing.Any) -> dict[str, typing.Any]:
    """``typing.get_type_hints`` with the names that modules import for type checkers only."""
    module = importlib.import_module(obj.__module__)
    return typing.get_type_hints(obj, {**vars(module), "HybridPredictor": HybridPredictor, "Predictor": Predictor})


def _members(hint: typing.Any) -> tuple[typing.Any, ...]:
    """The types a union admits, generics by their class (``os.PathLike[str]``: ``os.PathLike``)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return tuple(typing.get_origin(arg) or arg for arg in (typing.get_args(hint) if union else (hint,)))


def _admits(hint: typing.Any, value: object) -> bool:
    return isinstance(value, tuple(m for m in _members(hint) if isinstance(m, type)))


def _online() -> typing.Any:
    pytest.importorskip("torch")
    from rtstereo.train import online

    return online


def _predictor_options() -> typing.Any:
    from rtstereo.batch import PredictorOptions

    return PredictorOptions


def _resolve_pairs() -> typing.Any:
    from rtstereo.sources.pairs import resolve_pairs

    return resolve_pairs


def _load() -> typing.Any:
    from rtstereo.api import load

    return load


class _OwnPath:  # os.PathLike without being a pathlib.Path: what load()'s isinstance check takes
    def __fspath__(self) -> str:
        return "x"


@pytest.mark.parametrize(
    ("what", "parameters"),
    [
        (_resolve_pairs, ("left", "right")),  # said str: resolve_pairs(Path("L"), Path("R")) failed mypy, and ran
        (_predictor_options, ("model", "weights")),  # said str, as load() takes a Path for either
        (lambda: _online().adapting_predictor, ("model", "weights")),  # said str; a checkpoint's Path ran
        (_load, ("model", "weights")),  # weights said str | Path: another os.PathLike failed mypy, and ran
    ],
    ids=["resolve_pairs", "PredictorOptions", "adapting_predictor", "load"],
)
def test_parameters_that_take_a_path_are_annotated_so(what, parameters):
    hints = _hints(what())
    for name in parameters:
        assert _admits(hints[name], "x") and _admits(hints[name], Path("x")), (name, hints[name])
        assert _admits(hints[name], _OwnPath()), (name, hints[name])


def test_batch_jobs_output_may_be_a_str_for_type_checkers_too():
    """BatchJob's field says ``Path | None`` (it holds a Path), so the ``__init__`` dataclass makes said so too and
    ``BatchJob(output="out")`` failed mypy, while it runs (and expands ``~``); the ``__init__`` written for type
    checkers takes a str, and keeps to the fields, in their order, with their defaults."""
    from rtstereo import batch
    from rtstereo.batch import BatchJob

    job = BatchJob(output="out")
    assert job.output == Path("out")
    tree = ast.parse(inspect.getsource(BatchJob))
    inits = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.name == "__init__"
        and any(
            isinstance(p, ast.If) and node in p.body and ast.unparse(p.test) == "TYPE_CHECKING" for p in ast.walk(tree)
        )
    ]
    assert len(inits) == 1, "BatchJob's __init__ for type checkers, under if TYPE_CHECKING:"
    arguments = inits[0].args.args[1:]
    fields = [f for f in dataclasses.fields(BatchJob) if f.init]
    assert [a.arg for a in arguments] == [f.name for f in fields]
    defaults = inits[0].args.defaults
    assert len(defaults) == len(fields)
    namespace = vars(importlib.import_module(BatchJob.__module__))
    for argument, default, field in zip(arguments, defaults, fields):
        assert eval(ast.unparse(default), namespace) == field.default, field.name
        if field.name != "output":  # the others as the fields say
            assert ast.unparse(argument.annotation) == field.type, field.name
    output = eval(ast.unparse(arguments[0].annotation), {**namespace, "os": os})
    assert _admits(output, "out") and _admits(output, Path("out")) and type(None) in _members(output)
    assert batch.BatchJob is BatchJob


def test_returns_name_every_kind_of_predictor_they_give():
    """PredictorOptions.load() had no annotation (Any, for what load() returns); adapting_predictor said
    ``tuple[Any, OnlineAdapter]``."""
    returned = _members(_hints(_predictor_options().load)["return"])
    assert set(returned) == {Predictor, HybridPredictor}
    online = _online()
    first, adapter = typing.get_args(_hints(online.adapting_predictor)["return"])
    assert set(_members(first)) == {online.AdaptingPredictor, HybridPredictor} and adapter is online.OnlineAdapter


def _dtype_of(hint: typing.Any) -> typing.Any:
    """The scalar type of ``npt.NDArray[np.float32]`` (``| None`` left out); fails for a bare ``np.ndarray``."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    (array,) = [a for a in (typing.get_args(hint) if union else (hint,)) if a is not type(None)]
    assert typing.get_origin(array) is np.ndarray, hint
    (scalar,) = typing.get_args(typing.get_args(array)[1])  # ndarray[shape, dtype[scalar]]
    return scalar


def test_arrays_the_docs_give_a_dtype_are_annotated_with_it(tmp_path):
    """They said ``np.ndarray`` (any dtype): ``d: NDArray[np.float64] = r.disparity_px`` passed mypy, and a function
    taking ``NDArray[np.uint8]`` could not be given ``read_image(...)``'s array without a cast."""
    import rtstereo
    from rtstereo import confidence, geometry
    from rtstereo.io import disparity, images
    from rtstereo.types import DisparityResult

    left = images.read_image(REPO / "src" / "rtstereo" / "data" / "example" / "left.png")[:96, :128]
    right = images.read_image(REPO / "src" / "rtstereo" / "data" / "example" / "right.png")[:96, :128]
    assert left.dtype == _dtype_of(_hints(images.read_image)["return"])
    with rtstereo.load("sgbm", max_disp=32) as model:
        result = model.predict(left, right)
        checked, consistent = confidence.lr_check(model, rtstereo.StereoPair(left, right))
    fields = _hints(DisparityResult)
    assert result.disparity_px.dtype == checked.disparity_px.dtype == _dtype_of(fields["disparity_px"])
    assert result.left is not None and result.left.dtype == _dtype_of(fields["left"])
    assert result.valid_mask.dtype == _dtype_of(_hints(DisparityResult.valid_mask.fget)["return"])
    assert consistent.dtype == _dtype_of(typing.get_args(_hints(confidence.lr_check)["return"])[1])
    disparity.write_disparity(tmp_path / "d.npy", result.disparity_px.astype(np.float64))
    assert disparity.read_disparity(tmp_path / "d.npy").dtype == _dtype_of(_hints(disparity.read_disparity)["return"])
    calibration = rtstereo.Calibration(100.0, 100.0, 64.0, 64.0, 48.0, 0.1)
    depth = geometry.depth_from_disparity(result.disparity_px.astype(np.float64), calibration)
    assert depth.dtype == _dtype_of(_hints(geometry.depth_from_disparity)["return"])
    assert geometry.points_from_depth(depth.astype(np.float64), calibration).dtype == _dtype_of(
        _hints(geometry.points_from_depth)["return"]
    )
    assert geometry.disparity_from_depth(depth.astype(np.float64), calibration).dtype == _dtype_of(
        _hints(geometry.disparity_from_depth)["return"]
    )


def test_run_ray_video_is_annotated_with_the_three_values_it_returns():
    """It returns ``(rows, wall_s, interrupted)`` but said ``tuple[list[dict[str, Any]], float]``: mypy passed
    ``rows, wall_s = run_ray_video(...)``, which fails when run ("too many values to unpack")."""
    from rtstereo.scale.video import run_ray_video

    assert "``(rows, wall_s, interrupted)``" in inspect.getdoc(run_ray_video)
    assert typing.get_args(_hints(run_ray_video)["return"])[1:] == (float, bool)


def test_evaluate_takes_a_predictor_for_that_gives_the_hybrid():
    """``predictor_for`` said ``Callable[[Sample], Predictor]``: ``evaluate(lambda s: rtstereo.load("default"), ...)``,
    what ``rtstereo eval --model default`` runs, failed mypy (a HybridPredictor is no Predictor)."""
    from rtstereo import eval as evaluation

    for function in (evaluation.evaluate, evaluation.score_sample):
        returned = typing.get_args(_hints(function)["predictor_for"])[1]
        assert set(_members(returned)) == {Predictor, HybridPredictor}, function.__name__


def test_the_packages_lazy_names_are_real_names_to_type_checkers():
    """``rtstereo``'s module ``__getattr__`` (PEP 562, names loaded on first use) was seen by type checkers, which
    then took every attribute of the package for ``Any``: ``rtstereo.lod("sgbm")`` and
    ``rtstereo.io.read_image(5)`` passed mypy. It is hidden from them, and each submodule is imported for them
    instead; at run time nothing changes."""
    import pkgutil

    import rtstereo

    tree = ast.parse((REPO / "src" / "rtstereo" / "__init__.py").read_text(encoding="utf-8"))
    checked = [n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    for_checkers = [n for n in checked if ast.unparse(n.test) == "TYPE_CHECKING"]
    at_run_time = [n for n in checked if ast.unparse(n.test) == "not TYPE_CHECKING"]
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    assert [n.name for block in at_run_time for n in block.body if isinstance(n, ast.FunctionDef)] == ["__getattr__"]
    imported = {
        alias.name
        for block in for_checkers
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module is None and node.level == 1
        for alias in node.names
    }
    submodules = {m.name for m in pkgutil.iter_modules(rtstereo.__path__) if not m.name.startswith("_")}
    assert imported == submodules
    with pytest.raises(AttributeError, match="has no attribute 'lod'"):
        rtstereo.lod  # noqa: B018
    from rtstereo.io import read_image

    assert rtstereo.io.read_image is read_image


def test_rtstereo_exports_lazy_names_are_real_names_to_type_checkers():
    """The same for ``rtstereo.export``: ``from rtstereo.export import export_onnx`` was ``Any`` to mypy, and
    ``rtstereo.export.exprot_onnx`` passed it."""
    from rtstereo import export

    tree = ast.parse((REPO / "src" / "rtstereo" / "export" / "__init__.py").read_text(encoding="utf-8"))
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    imported = {
        alias.name
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module == "onnx_export"
        for alias in node.names
    }
    assert imported == export._LAZY
    with pytest.raises(AttributeError, match="has no attribute 'exprot_onnx'"):
        export.exprot_onnx  # noqa: B018
