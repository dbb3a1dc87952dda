"""Messages that help, and one voice on stderr: each branch of the hardened error paths."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import pytest

from rtstereo.cli import main, one_voice
from rtstereo.errors import MissingDependencyError, require
from rtstereo.io.quiet import hold_native_output, native_output_held

from ..conftest import run_cli

SGBM = ["--model", "sgbm", "--max-disp", "16"]
SRC = Path(__file__).resolve().parents[2] / "src" / "rtstereo"


# ---- -o: a file by its suffix, a folder by its slash ----------------------------------------


def test_unknown_output_suffix_lists_the_suffixes_and_makes_no_folder(capsys, tmp_path, pair):
    code, _, err = run_cli(capsys, "predict", *pair, *SGBM, "-o", tmp_path / "disp.txt")
    assert code == 2
    assert "unknown output suffix '.txt'" in err and ".png" in err and ".pfm" in err and ".npy" in err
    assert "disp.txt/" in err  # says how to ask for a folder
    assert not (tmp_path / "disp.txt").exists()


def test_a_path_ending_in_a_slash_is_a_folder_whatever_its_suffix(capsys, tmp_path, pair):
    code, _, _ = run_cli(capsys, "predict", *pair, *SGBM, "-o", f"{tmp_path / 'disp.png'}/", "--format", "pfm")
    assert code == 0 and (tmp_path / "disp.png" / "l.pfm").is_file()


def test_an_existing_folder_with_a_dot_stays_a_folder(capsys, tmp_path, pair):
    (tmp_path / "run.v2").mkdir()
    code, _, _ = run_cli(capsys, "predict", *pair, *SGBM, "-o", tmp_path / "run.v2", "--format", "npy")
    assert code == 0 and (tmp_path / "run.v2" / "l.npy").is_file()


def test_a_known_suffix_is_one_file(capsys, tmp_path, pair):
    code, _, _ = run_cli(capsys, "predict", *pair, *SGBM, "-o", tmp_path / "d.pfm")
    assert code == 0 and (tmp_path / "d.pfm").is_file()


# ---- model settings: advice only for valid values --------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--max-disp", "-5"], "--max-disp must be >= 1, got -5"),
        (["--max-disp", "0"], "--max-disp must be >= 1, got 0"),
        (["--iters", "0"], "--iters must be >= 2, got 0"),
        (["--iters", "1"], "--iters must be >= 2, got 1"),  # ">= 1" named a value CREStereo refuses next
        (["--set", "iters=1"], "--set iters must be >= 2, got 1"),
        (["--set", "max_disp=-3"], "--set max_disp must be >= 1, got -3"),  # named as the user wrote it
        (["--set", "max_disp=nan"], "setting 'max_disp': expected a whole number, got 'nan'"),  # was "must be >= 1"
        (["--set", "max_disp=inf"], "setting 'max_disp': expected a whole number, got 'inf'"),
    ],
)
def test_settings_below_one_are_refused_before_any_model(capsys, pair, options, message):
    code, _, err = run_cli(capsys, "predict", *pair, "--model", "rtnet-v5", *options)
    assert code == 2 and err.strip() == f"rtstereo predict: error: {message}"
    assert "re-export" not in err


NINES = "9" * 5000  # past the 4300 digits Python's int() reads


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        ("rtnet-v5", ["--set", f"threads={NINES}"], "setting 'threads': 999999999... (5000 digits) is too large"),
        ("rtnet-v5", ["--set", f"threads=-{NINES}"], "setting 'threads': -99999999... (5000 digits) is out of range"),
        ("rtnet-v5", ["--set", "threads=1e400"], "setting 'threads': 1e400 is too large"),
        (
            "rtnet-v5",
            ["--set", f"threads=1{'0' * 999}"],
            "threads 100000000... (1000 digits) is more than this machine can use",
        ),
        ("sgbm", ["--set", f"max_disp={NINES}"], "setting 'max_disp': 999999999... (5000 digits) is too large"),
        ("sgbm", ["--set", f"max_disp={'x' * 200}"], "expected a whole number, got 'xxxxxxxxxx"),
        ("sgbm", ["--set", f"fill_holes={'x' * 200}"], "expected true or false, got 'xxxxxxxxxx"),
        ("sgbm", ["--set", f"{'k' * 200}=1"], "model 'sgbm' has no setting 'kkkkkkkkkk"),
        ("sgbm", ["--max-disp", NINES], "argument --max-disp: 999999999... (5000 digits) is too large"),
        ("sgbm", ["--max-disp", f"-{'9' * 1000}"], "--max-disp must be >= 1, got -99999999... (1000 digits)"),
        ("sgbm", ["--threads", NINES], "argument --threads: 999999999... (5000 digits) is too large"),
        # it was a traceback (OverflowError) once per pair: the hybrid checks SGBM's limit as SGBM does
        ("hybrid", ["--set", f"max_disp={'9' * 1000}"], "at most 2147483632 pixels (OpenCV's limit), got 999999999..."),
        ("rtnet-v5", ["--set", f"max_disp={'9' * 1000}"], "cannot run with max_disp=999999999... (1000 digits)"),
    ],
)
def test_setting_errors_say_too_large_and_echo_no_long_value_whole(capsys, pair, model, options, message):
    """``--set threads=<5000 digits>`` said "expected a whole number" and printed every digit back."""
    if message.startswith("argument "):  # argparse's own refusal
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", *map(str, pair), "--model", model, *options])
        code, err = exit_info.value.code, capsys.readouterr().err.splitlines()[-1]
    else:
        code, _, err = run_cli(capsys, "predict", *pair, "--model", model, *options)
    assert code == 2 and message in err and len(err) < 500, err[:600]


# ---- checkpoints: the file, the reason, the expected layout ----------------------------------


def _broken_checkpoints(folder):
    torch = pytest.importorskip("torch")
    import pickle

    torch.save({"w": torch.zeros(3)}, folder / "ok.pt")
    whole = (folder / "ok.pt").read_bytes()
    (folder / "cut.pt").write_bytes(whole[: len(whole) // 2])
    (folder / "text.pt").write_bytes(b"hello, not weights")
    torch.save({"w": torch.zeros(3), "when": __import__("datetime").date(2020, 1, 1)}, folder / "objects.pt")
    (folder / "legacy.pt").write_bytes(pickle.dumps({"w": 1}, protocol=4))
    return {
        "cut.pt": "not a complete zip archive",
        "text.pt": "not a PyTorch file",
        "objects.pt": "holds Python objects (datetime.date) besides tensors, refused for safety",
        "legacy.pt": "not a PyTorch file",
    }


def test_checkpoint_errors_are_short_and_say_what_was_expected(tmp_path):
    from rtstereo.errors import CheckpointError
    from rtstereo.models.checkpoint import read_torch_file

    for name, reason in _broken_checkpoints(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            read_torch_file(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"cannot read weights file {tmp_path / name}: ")
        assert reason in message and "expected a torch.save file of tensors" in message
        assert len(message) - len(str(tmp_path / name)) < 220 and "\n" not in message and "weights_only" not in message


def test_load_failure_reason_of_another_error():
    from rtstereo.models.checkpoint import load_failure_reason

    assert load_failure_reason(OSError("disk on fire\nmore")) == "OSError: disk on fire"
    assert load_failure_reason(ValueError()) == "ValueError"


# ---- optional dependencies: installed but not loadable ---------------------------------------


def test_installed_package_missing_its_system_library_names_the_library(monkeypatch):
    def broken(name):
        raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(MissingDependencyError) as info:
        require("pyrealsense2", "realsense", "the Intel RealSense camera")
    message = str(info.value)
    assert "installed but cannot load" in message and "libusb-1.0.so.0 is missing" in message
    assert "apt-get install libusb-1.0-0" in message and "not installed" not in message


def test_a_package_that_is_not_installed_names_the_extra(monkeypatch):
    def absent(name):
        raise ModuleNotFoundError(f"No module named '{name}'")

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(MissingDependencyError, match=r"not installed .* pip install 'rtstereo\[realsense\]'"):
        require("pyrealsense2", "realsense", "the Intel RealSense camera")


@pytest.mark.parametrize(
    "module, package",
    [("rerun", "rerun-sdk"), ("yt_dlp", "yt-dlp"), ("pyarrow.parquet", "pyarrow"), ("depthai", "depthai")],
)
def test_a_missing_package_is_named_as_pip_installs_it(monkeypatch, module, package):
    """It named the module: 'rerun' on PyPI is another project than rerun-sdk; 'pyarrow.parquet' is no package."""

    def absent(name):
        raise ModuleNotFoundError(f"No module named '{name}'")

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(MissingDependencyError) as info:
        require(module, "viewer", "the 3D viewer")
    assert str(info.value).startswith(f"the 3D viewer needs the Python package '{package}', which is not installed")


@pytest.mark.parametrize(
    "error",
    [
        ImportError("pyarrow requires NumPy 2.0 or newer, found 1.26.4"),  # rerun-sdk 0.20 beside OpenCV 5
        ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow"),  # one of its own dependencies
    ],
)
def test_a_package_that_is_installed_but_fails_to_import_is_not_called_missing(monkeypatch, error):
    """It said "needs the Python package 'rerun-sdk', which is not installed ... Install it with: pip install
    'rtstereo[viewer]'" of an installed rerun-sdk whose import failed: installing it again changes nothing."""

    def broken(name):
        raise error

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(MissingDependencyError) as info:
        require("rerun", "viewer", "the 3D viewer")
    assert str(info.value) == (
        f"the 3D viewer needs the Python package 'rerun-sdk', which is installed but cannot be imported "
        f"({error.__class__.__name__}: {error}): a package it needs is missing, or of a version it cannot use"
    )


def test_a_package_whose_own_module_is_missing_is_not_installed(monkeypatch):
    def absent(name):
        raise ModuleNotFoundError(f"No module named '{name}'", name=name.partition(".")[0])

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(MissingDependencyError, match=r"'pyarrow', which is not installed .* 'rtstereo\[scale\]'$"):
        require("pyarrow.parquet", "scale", "a Parquet manifest")


def _extras_named_in_source() -> set[tuple[str, str]]:
    """(file, extra) of every ``require``/``require_installed`` call in the package that names an extra."""
    call = re.compile(r"require(?:_installed)?\(\s*\"[\w.]+\",\s*\"([\w-]+)\"")
    return {
        (path.relative_to(SRC).as_posix(), extra)
        for path in SRC.rglob("*.py")
        for extra in call.findall(path.read_text(encoding="utf-8"))
    }


def test_every_extra_a_missing_dependency_names_exists():
    # 'rtstereo[onnxruntime]' was named, an extra pyproject.toml does not have: pip warns and installs nothing
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    named = _extras_named_in_source()
    assert len(named) > 10, named  # the pattern still finds the calls
    assert {(path, extra) for path, extra in named if extra not in extras} == set()


@pytest.mark.parametrize("module", ["onnxruntime", "onnxruntime.quantization"])
def test_a_missing_core_dependency_names_its_package_not_an_extra(monkeypatch, module):
    from rtstereo.runtime.providers import _ort

    def absent(name):
        raise ModuleNotFoundError(f"No module named '{name}'")

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(MissingDependencyError) as info:
        _ort() if module == "onnxruntime" else require(module, None, "int8 quantization")
    message = str(info.value)
    assert "pip install onnxruntime (a dependency of rtstereo itself)" in message and "rtstereo[" not in message


def test_an_unknown_system_library_gets_no_package_hint(monkeypatch):
    def broken(name):
        raise ImportError("libfoo.so.3: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(
        MissingDependencyError, match=r"libfoo.so.3 is missing; install it with the system's package manager$"
    ):
        require("foo", "camera", "foo")


# ---- one voice on stderr ---------------------------------------------------------------------


def test_warnings_become_single_rtstereo_lines():
    import subprocess
    import sys

    code = (
        "import warnings\n"
        "from rtstereo.cli import one_voice\n"
        "with one_voice('predict'):\n"
        "    warnings.warn('the network runs at 240x320;\\n  the disparity is rescaled', UserWarning)\n"
        "warnings.warn('after the verb', UserWarning)\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    lines = err.splitlines()
    assert lines[0] == "rtstereo predict: warning: the network runs at 240x320; the disparity is rescaled"
    assert "after the verb" in lines[1] and not lines[1].startswith("rtstereo")  # Python's format is back


def test_warnings_stay_warnings_for_code_that_records_them():
    with pytest.warns(UserWarning, match="recorded"), one_voice("predict"):
        warnings.warn("recorded", UserWarning, stacklevel=1)


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "anynet", "--size", "64", "-o", "a.onnx"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == (
        "rtstereo export: error: argument --size: size '64' not understood: expected HEIGHTxWIDTH in pixels, "
        "e.g. 480x640 (see `rtstereo export --help`)\n"
    )


def test_noise_of_a_failing_call_is_dropped(capfd):
    previous = hold_native_output(True)
    try:
        with pytest.raises(RuntimeError), native_output_held():
            os.write(2, b"libpng error: IDAT: incorrect data check\n")
            os.write(1, b"[depthai] [warning] USB protocol not available\n")
            raise RuntimeError("failed")
        with native_output_held() as noise:
            os.write(2, b"[mov,mp4 @ 0x1] moov atom not found\n")
            noise.discard()
    finally:
        hold_native_output(previous)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_noise_of_a_successful_call_goes_to_stderr(capfd):
    previous = hold_native_output(True)
    try:
        with native_output_held() as noise:
            os.write(1, b"driver chatter\n")
    finally:
        hold_native_output(previous)
    out, err = capfd.readouterr()
    assert out == "" and err == "driver chatter\n" and noise.text == "driver chatter\n"


def test_holding_is_off_for_library_users(capfd):
    with native_output_held() as noise:
        os.write(1, b"left alone\n")
    assert capfd.readouterr().out == "left alone\n" and noise.text == ""


def test_a_damaged_png_gives_our_line_only(capfd, tmp_path, pair):
    damaged = tmp_path / "damaged.png"
    data = bytearray(open(pair[0], "rb").read())
    data[100] ^= 0xFF  # a CRC error inside IDAT: libpng prints "libpng error: ..." itself
    damaged.write_bytes(bytes(data))
    code = main(["predict", str(damaged), pair[1], *SGBM])
    out, err = capfd.readouterr()
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo predict: error: cannot read {damaged}: not an image OpenCV can decode, or the file is damaged\n"
    )


def test_a_damaged_jpeg_that_still_decodes_is_a_warning_naming_the_file(capfd, tmp_path, pair):
    ok, encoded = cv2.imencode(".jpg", cv2.imread(pair[0]))
    data = encoded.tobytes()
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(data[:-34] + b"\xff\x00" * 16 + data[-2:])  # libjpeg: "Corrupt JPEG data: bad Huffman code"
    with pytest.warns(UserWarning, match=rf"{re.escape(str(damaged))}: the image library warned .*Corrupt JPEG data"):
        code = main(["predict", str(damaged), pair[1], *SGBM, "-q", "-o", str(tmp_path / "d.pfm")])
    out, err = capfd.readouterr()
    assert ok and code == 0 and out == "" and err == ""  # not libjpeg's own line, which names no file


def test_a_file_that_is_not_a_video_gives_our_line_only(capfd, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))  # an mp4 header, no moov atom
    code = main(["video", str(clip), "--sbs", *SGBM])
    out, err = capfd.readouterr()
    assert code == 2 and out == "" and err.startswith("rtstereo video: error: cannot read side-by-side video")
    assert "moov" not in err and len(err.splitlines()) == 1


def test_the_python_api_gives_no_re_export_advice_for_an_invalid_range():
    import rtstereo
    from rtstereo.errors import InputError

    with pytest.raises(InputError, match=r"^max_disp must be >= 1, got -5$"):
        rtstereo.load("rtnet-v5", max_disp=-5)
    with pytest.raises(InputError, match=r"rtnet's weights fit that value only") as err:
        rtstereo.load("rtnet-v5", max_disp=96)  # a valid value the packaged graph was not exported for
    assert "re-export" not in str(err.value)


def test_an_export_run_with_a_setting_its_weights_fit_once_is_not_told_to_re_export():
    """rtnet-v5 at --max-disp 64 was told "re-export with `rtstereo export rtnet ... --set max_disp=64`", which the
    checkpoint refuses (its cost volume's levels are channels of its weights); GwcNet's range shapes no weight."""
    from pathlib import Path

    from rtstereo.errors import InputError
    from rtstereo.runtime.onnx import OnnxContract, _check_settings

    path = Path("net.onnx")
    settings = {"max_disp": 192, "half_refinement": True, "full_refinement": True}
    rtnet = OnnxContract("rtnet", settings, "imagenet", 32, None)
    for key, value in (("max_disp", 64), ("full_refinement", False)):
        with pytest.raises(InputError) as err:
            _check_settings(rtnet, {key: value}, path)
        said = str(err.value)
        assert f"rtnet's weights fit that value only (another {key} is another network" in said, said
        assert f"rtstereo train --set {key}={value}); leave {key} out" in said and "re-export" not in said, said
    _check_settings(rtnet, {"max_disp": "192.0"}, path)  # the value it was exported with
    gwcnet = OnnxContract("gwcnet-g", {"max_disp": 192}, "imagenet", 16, None)
    with pytest.raises(InputError, match=r"re-export with `rtstereo export gwcnet-g \.\.\. --set max_disp=64`$"):
        _check_settings(gwcnet, {"max_disp": 64}, path)


def test_export_without_onnxslim_names_the_extra_before_exporting(monkeypatch):
    # it was a traceback (ModuleNotFoundError) at the clean-up step, after the export itself had run
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rtstereo.export import onnx_export

    monkeypatch.setitem(sys.modules, "onnxslim", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"'onnxslim'.*pip install 'rtstereo\[export\]'"):
        onnx_export._slim(None)
    monkeypatch.delitem(sys.modules, "rtstereo.export.onnx_export")  # put back when the test ends
    with pytest.raises(MissingDependencyError, match=r"'onnxslim'.*pip install 'rtstereo\[export\]'"):
        importlib.import_module("rtstereo.export.onnx_export")


def test_int8_quantization_without_onnx_names_onnx_and_its_extra(monkeypatch, tmp_path):
    # onnxruntime.quantization imports onnx: without onnx, the message named onnxruntime, which was installed
    from rtstereo.export.quantize import quantize_int8

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"'onnx'.*pip install 'rtstereo\[export\]'"):
        quantize_int8(tmp_path / "a.onnx", tmp_path / "b.onnx")


def test_what_another_thread_prints_during_a_hold_is_not_taken_for_the_held_calls_noise(capfd, monkeypatch):
    """video's writer printed its mp4 note while the reader decoded an image: the note landed in the hold's file
    and came out as "R/p4.png: the image library warned while decoding it (rtstereo video: ...)"."""
    import io
    import threading

    # sys.stderr on descriptor 2, as in a terminal (pytest's writes elsewhere)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True))
    previous = hold_native_output(True)
    try:
        with native_output_held() as noise:
            other = threading.Thread(target=lambda: print("rtstereo video: a note", file=sys.stderr, flush=True))
            other.start()
            other.join(timeout=0.5)  # it waits for the hold to end
            os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        other.join()
    finally:
        hold_native_output(previous)
    assert noise.text == "libpng warning: iCCP: known incorrect sRGB profile\n"
    assert "rtstereo video: a note\n" in capfd.readouterr().err


def _imported_without_torch(names: list[str]) -> list[tuple[str, str]]:
    """``(module, what importing it said)`` for each of ``names``, imported in a fresh interpreter where ``import
    torch`` fails as it does without torch: the one-line message of a ``MissingDependencyError``, ``bare ...`` for
    another ImportError, ``imported`` when it imported."""
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now raises ImportError, as without it
        "import importlib\n"
        "from rtstereo.errors import MissingDependencyError\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except MissingDependencyError as exc:\n"
        "        print(name, '|', exc)\n"
        "    except ImportError as exc:\n"
        "        print(name, '| bare', type(exc).__name__, exc)\n"
        "    else:\n"
        "        print(name, '| imported')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(names), done.stdout
    return [(line.split(" | ", 1)[0], line.split(" | ", 1)[1]) for line in lines]


def test_the_python_modules_that_need_torch_name_the_extra_without_it():
    """``from rtstereo.train.online import adapting_predictor`` (README) and ``import rtstereo.datasets.synthetic`` said
    "No module named 'torch'" from deep inside, where the verbs name ``pip install 'rtstereo[torch]'``."""
    lines = [
        message
        for _, message in _imported_without_torch(
            ["rtstereo.train.online", "rtstereo.train.hints", "rtstereo.datasets.synthetic"]
        )
    ]
    assert lines[0] == lines[1] and lines[0].startswith("rtstereo.train (training and adaptation) needs the Python")
    assert lines[2].startswith("rendering synthetic scenes (rtstereo.datasets.synthetic) needs the Python package")
    assert all(line.endswith("Install it with: pip install 'rtstereo[torch]'") for line in lines), lines


def _modules_importing_torch_at_the_top() -> list[str]:
    """Every module of the package with an ``import torch`` (or ``from torch ...``) in its body or a top-level try."""
    import ast

    names = []
    for path in sorted(SRC.rglob("*.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        statements = [s for node in body for s in ([node] if not isinstance(node, ast.Try) else node.body)]
        if any(
            (isinstance(s, ast.Import) and any(a.name.split(".")[0] == "torch" for a in s.names))
            or (isinstance(s, ast.ImportFrom) and (s.module or "").split(".")[0] == "torch" and not s.level)
            for s in statements
        ):
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_that_imports_torch_at_the_top_names_the_extra_without_it():
    """``import rtstereo.models.rtnet`` (volumes, gwcnet, the renderer's modules, ...) without torch said a bare "No
    module named 'torch'", where rtstereo.train names ``pip install 'rtstereo[torch]'`` in one line."""
    names = _modules_importing_torch_at_the_top()
    assert {"rtstereo.models.rtnet", "rtstereo.models.volumes", "rtstereo.models.gwcnet", "rtstereo.train"} <= set(
        names
    ), names
    said = _imported_without_torch(names)
    for name, message in said:
        line = f"{name} | {message}"
        assert "\n" not in message and message.endswith("Install it with: pip install 'rtstereo[torch]'"), line
        assert "needs the Python package 'torch', which is not installed" in message, line
    rtnet = dict(said)["rtstereo.models.rtnet"]
    assert rtnet.startswith("rtstereo.models.rtnet needs the Python package 'torch'"), rtnet


def test_torch_missing_passes_on_another_import_error_when_torch_is_there():
    """With torch importable, the error of a module's failed torch imports is the original one (a broken install), not
    advice to install what is installed."""
    pytest.importorskip("torch")
    from rtstereo.errors import torch_missing

    original = ImportError("cannot import name 'nn' from 'torch'")
    with pytest.raises(ImportError) as caught:
        torch_missing("rtstereo.models.rtnet", original)
    assert caught.value is original


# ---- a device, a pipe or a socket where a folder should be ----------------------------------------


@pytest.fixture(params=["device", "pipe"])
def not_a_folder_node(request, tmp_path):
    """``(path, kind)``: ``/dev/null``, or a named pipe made in ``tmp_path``."""
    if request.param == "device":
        if not os.path.exists("/dev/null"):
            pytest.skip("needs /dev/null")
        return Path("/dev/null"), "a device"
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return fifo, "a pipe"


def test_every_path_needed_as_a_folder_names_a_device_or_a_pipe_as_such(not_a_folder_node, capsys, pair):
    """Six messages said '/dev/null is a file, not a folder' (an export's, a dataset's, train's run folder, bench's and
    eval's -o, adapt's output, synth's -o), and calibrate's -o 'is a file'; each now says what it is."""
    from rtstereo.cli.bench import check_output_folder
    from rtstereo.cli.common import check_output_file
    from rtstereo.cli.synth import _check_output
    from rtstereo.datasets.readers import find_samples
    from rtstereo.errors import RtStereoError
    from rtstereo.export.onnx_export import check_output_path
    from rtstereo.train.loop import RunFiles

    node, kind = not_a_folder_node
    said = f"{node} is {kind}, not a folder"
    refusals = {
        f"cannot write the export to {node / 'm.onnx'}: {said}": lambda: check_output_path(node / "m.onnx"),
        f"{node} is {kind}, not a folder: give the folder of a scene": lambda: find_samples(node),
        f"run folder {node / 'run'}: {said}": lambda: RunFiles(node / "run").check_usable(),
        f"cannot write benchmark results to {node}: {said}": lambda: check_output_folder(node),
        f"-o {node / 'w.pt'}: {said}": lambda: check_output_file(node / "w.pt", "-o"),
        f"-o {node}: {said}": lambda: _check_output(node, {}),
        f"-o {node / 'sub'}: {said}": lambda: _check_output(node / "sub", {}),
    }
    for message, refuse in refusals.items():
        with pytest.raises(RtStereoError) as caught:
            refuse()
        assert str(caught.value).startswith(message), (message, str(caught.value))
    board = ["--board", "chessboard:9x6:0.025"]
    code, _, err = run_cli(capsys, "calibrate", "--left", pair[0], "--right", pair[1], *board, "-o", node)
    assert code == 2 and f"-o {node} is {kind}: the calibration is written into a folder" in err, err
