"""A corpus of small, generated bad inputs, and the command line each one is tried with.

Every case is one run of one verb: the arguments, the exit code a new user should get, and a piece of
text the first line must hold. :func:`run_case` runs it in this process through ``rtstereo.cli.main``
(captured at the file-descriptor level, so library noise written by C code is seen too);
``python -m tests.hardening.corpus DIR`` prints the table of what happens today.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..conftest import make_textured_pair

PAIR_HW = (48, 72)


@dataclass(frozen=True)
class Case:
    """One verb run on one bad input.

    Attributes:
        name: the input, in words.
        verb: the verb run.
        argv: arguments after ``rtstereo``.
        exit_code: the exit code a user should get.
        first_line: text the first line of output must contain ("" for any rtstereo line).
        torch: the case needs torch installed.
    """

    name: str
    verb: str
    argv: tuple[str, ...]
    exit_code: int
    first_line: str = ""
    torch: bool = False


def _write_pair(folder: Path, stem: str = "", hw: tuple[int, int] = PAIR_HW, shift_px: int = 4) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    left, right = make_textured_pair(*hw, disparity_px=shift_px)
    paths = folder / f"{stem}left.png", folder / f"{stem}right.png"
    cv2.imwrite(str(paths[0]), left)
    cv2.imwrite(str(paths[1]), right)
    return paths


def _write_pfm(path: Path, array: np.ndarray) -> None:
    from rtstereo.io.pfm import write_pfm

    write_pfm(path, array.astype(np.float32))


def _eth3d_scene(folder: Path, hw: tuple[int, int] = PAIR_HW, ndisp: int | None = None, gt_hw=None) -> Path:
    """An ETH3D/MiddEval3 scene: im0, im1, disp0GT.pfm and calib.txt (``ndisp`` = the image width)."""
    folder.mkdir(parents=True, exist_ok=True)
    left, right = make_textured_pair(*hw, disparity_px=4)
    cv2.imwrite(str(folder / "im0.png"), left)
    cv2.imwrite(str(folder / "im1.png"), right)
    _write_pfm(folder / "disp0GT.pfm", np.full(gt_hw or hw, 4.0))
    width = hw[1]
    (folder / "calib.txt").write_text(
        f"cam0=[100 0 {width / 2} ; 0 100 {hw[0] / 2} ; 0 0 1]\ncam1=[100 0 {width / 2} ; 0 100 {hw[0] / 2} ; 0 0 1]\n"
        f"doffs=0\nbaseline=100\nwidth={width}\nheight={hw[0]}\nndisp={ndisp or width}\n"
    )
    return folder


def build(root: Path) -> list[Case]:
    """Write the corpus's files under ``root`` and return its cases."""
    root.mkdir(parents=True, exist_ok=True)
    left, right = _write_pair(root / "good")
    big_left, _ = _write_pair(root / "other", hw=(60, 90))
    corrupt = root / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    text_png = root / "text.png"
    text_png.write_text("not an image\n")
    not_video = root / "clip.mp4"
    not_video.write_text("not a video\n")
    missing = root / "missing.png"
    empty = root / "empty"
    empty.mkdir(exist_ok=True)
    weights = root / "broken.ckpt"
    weights.write_bytes(b"PK\x03\x04 truncated archive")

    eth3d = _eth3d_scene(root / "eth3d" / "wide_range")  # ndisp = width, as ETH3D's calib.txt give it
    _eth3d_scene(root / "mismatch" / "scene_a", ndisp=32, gt_hw=(30, 40))
    (root / "linked").mkdir(exist_ok=True)
    link = root / "linked" / "scene_link"
    if not link.is_symlink():
        link.symlink_to(eth3d, target_is_directory=True)
    loop = root / "looped" / "scene"
    if not loop.exists():
        _eth3d_scene(loop, ndisp=32)
        (loop / "again").symlink_to(root / "looped", target_is_directory=True)
    corrupt_scene = _eth3d_scene(root / "corrupt_scene" / "bad", ndisp=32)
    (corrupt_scene / "im0.png").write_bytes(corrupt.read_bytes())

    sgbm = ("--model", "sgbm", "--max-disp", "16")
    out = root / "out"
    cases = [
        Case("good pair", "predict", ("predict", str(left), str(right), *sgbm, "-o", str(out / "good") + "/"), 0),
        Case("corrupt PNG", "predict", ("predict", str(corrupt), str(right), *sgbm), 2, "corrupt.png"),
        Case("text file named .png", "predict", ("predict", str(text_png), str(right), *sgbm), 2, "text.png"),
        Case("missing file", "predict", ("predict", str(missing), str(right), *sgbm), 2, "missing.png"),
        Case("left/right sizes differ", "predict", ("predict", str(left), str(big_left), *sgbm), 2, "size"),
        Case("empty folders", "predict", ("predict", str(empty), str(empty), *sgbm), 2, "empty"),
        Case(
            "-o disp.txt", "predict", ("predict", str(left), str(right), *sgbm, "-o", str(out / "disp.txt")), 2, ".txt"
        ),
        Case("--max-disp -5", "predict", ("predict", str(left), str(right), "--max-disp", "-5"), 2, "max"),
        Case("unknown model", "predict", ("predict", str(left), str(right), "--model", "sgmb"), 2, "sgbm"),
        Case(
            "corrupt weights",
            "predict",
            ("predict", str(left), str(right), "--model", "gwcnet-gc", "--weights", str(weights)),
            2,
            "broken.ckpt",
            torch=True,
        ),
        Case("corrupt PNG", "compare", ("compare", str(corrupt), str(left)), 2, "corrupt.png"),
        Case("missing file", "compare", ("compare", str(missing), str(left)), 2, "missing.png"),
        Case("non-video file", "video", ("video", str(not_video), "--sbs", *sgbm), 2, "clip.mp4"),
        Case("missing file", "video", ("video", str(root / "missing.mp4"), "--sbs", *sgbm), 2, "missing.mp4"),
        Case("unknown camera", "live", ("live", "--camera", "kinect", *sgbm, "-q"), 2, "kinect"),
        Case(
            "realsense without its system library",
            "live",
            ("live", "--camera", "realsense", *sgbm, "-q"),
            2,
            "RealSense",
        ),
        Case("oak without a device", "live", ("live", "--camera", "oak", *sgbm, "--max-frames", "1", "-q"), 2, "OAK"),
        Case(
            "ndisp = image width (ETH3D)",
            "eval",
            ("eval", "--model", "sgbm", str(root / "eth3d"), "-q", "-o", str(out / "eval")),
            0,
            "",
        ),
        Case(
            "symbolic-link scene",
            "eval",
            ("eval", "--model", "sgbm", str(root / "linked"), "-q", "-o", str(out / "eval")),
            0,
            "",
        ),
        Case(
            "symbolic-link loop",
            "eval",
            ("eval", "--model", "sgbm", str(root / "looped"), "-q", "-o", str(out / "eval")),
            0,
            "",
        ),
        Case(
            "regular file",
            "eval",
            ("eval", "--model", "sgbm", str(left), "-q", "-o", str(out / "eval")),
            2,
            "not a folder",
        ),
        Case(
            "empty folder",
            "eval",
            ("eval", "--model", "sgbm", str(empty), "-q", "-o", str(out / "eval")),
            2,
            "no stereo dataset",
        ),
        Case(
            "GT size differs",
            "eval",
            ("eval", "--model", "sgbm", str(root / "mismatch"), "-q", "-o", str(out / "eval")),
            1,
            "scene_a",
        ),
        Case(
            "corrupt scene image",
            "eval",
            ("eval", "--model", "sgbm", str(root / "corrupt_scene"), "-q", "-o", str(out / "eval")),
            1,
            "bad",
        ),
        Case("unknown model", "models", ("models", "sgmb"), 2, "sgbm"),
        Case(
            "corrupt weights",
            "export",
            ("export", "gwcnet-gc", "--weights", str(weights), "--size", "64x128", "-o", str(out / "g.onnx")),
            2,
            "broken.ckpt",
            torch=True,
        ),
        Case("bad size", "export", ("export", "anynet", "--size", "64", "-o", str(out / "a.onnx")), 2, "size"),
        Case("bad size", "bench", ("bench", "sgbm", "--sizes", "abc"), 2, "abc"),
        Case(
            "missing images",
            "calibrate",
            (
                "calibrate",
                "--left",
                str(empty),
                "--right",
                str(empty),
                "--board",
                "chessboard:9x6:0.025",
                "-o",
                str(out / "calib"),
            ),
            2,
            "",
        ),
        Case(
            "output is a file", "synth", ("synth", "1", "-o", str(left), "--size", "32x64"), 2, "left.png", torch=True
        ),
        Case(
            "missing data folder",
            "train",
            ("train", "--data", str(root / "no_such_data"), "--steps", "1", "--out-dir", str(out / "train")),
            2,
            "no_such_data",
            torch=True,
        ),
    ]
    return cases


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def first_line(self) -> str:
        """The first non-empty line the user sees: stderr for failures, else stdout."""
        text = self.stderr if self.exit_code else (self.stdout or self.stderr)
        return next((line for line in text.splitlines() if line.strip()), "")


def run_case(case: Case) -> Outcome:
    """Run one case in this process, capturing stdout and stderr at the file-descriptor level."""
    import tempfile

    from rtstereo.cli import main

    with tempfile.TemporaryFile("w+b") as out, tempfile.TemporaryFile("w+b") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        streams = sys.stdout, sys.stderr
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        # Python's streams onto the descriptors too (a test runner may have replaced them).
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - closed below
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - closed below
        try:
            try:
                code = main(list(case.argv))
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.close()
            sys.stderr.close()
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return Outcome(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def main(argv: list[str]) -> int:
    """Print the corpus table (input, verb, exit code, first line) for the code installed now."""
    root = Path(argv[0]) if argv else Path(tempfile_dir())
    print("| input | verb | exit | first line |\n|---|---|---|---|")
    for case in build(root):
        outcome = run_case(case)
        line = outcome.first_line.replace("|", "\\|")[:160]
        tb = " (traceback)" if "Traceback" in outcome.stderr else ""
        print(f"| {case.name} | {case.verb} | {outcome.exit_code}{tb} | {line} |", flush=True)
    return 0


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="rtstereo-corpus-")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
