"""Progress on stderr: tqdm's bar on a terminal, plain lines now and then in a log file or a pipe."""

from __future__ import annotations

import io

from rtstereo.cli import main
from rtstereo.progress import progress_bar

from .conftest import SGBM_ARGS, write_pairs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _count_to(total: int, stream: io.StringIO, note_at: int | None = None) -> str:
    with progress_bar(total=total, desc="predict", unit="pair", file=stream, bar_format="{desc}: {n}/{total}") as bar:
        for n in range(total):
            if n == note_at:
                progress_bar.write("a failure line", file=stream)
            bar.update()
    return stream.getvalue()


def test_without_a_terminal_the_progress_is_a_line_every_tenth_not_a_redrawn_bar():
    """In `2> run.log` every redraw of the bar was kept: one line of '\\r'-joined bars, hundreds of them."""
    said = _count_to(200, io.StringIO(), note_at=50)
    assert "\r" not in said
    lines = said.splitlines()
    assert lines[0] == "predict: 0/200" and lines[-1] == "predict: 200/200"
    assert "a failure line" in lines and len(lines) == 12  # 0, 20, ..., 200, and the line written between


def test_the_end_is_said_when_no_tenth_showed_it_and_a_terminal_keeps_the_bar():
    assert _count_to(5, io.StringIO()).splitlines()[-1] == "predict: 5/5"
    with progress_bar(total=3, desc="predict", file=io.StringIO(), disable=True) as bar:
        bar.update(3)
    assert "\r" in _count_to(3, _Terminal())


def test_a_batch_logged_to_a_file_gives_lines(capsys, tmp_path):
    lefts, rights = write_pairs(tmp_path / "in", 3)
    code = main(["predict", str(lefts), str(rights), *SGBM_ARGS, "-o", f"{tmp_path / 'out'}/", "--format", "png16"])
    err = capsys.readouterr().err
    assert code == 0 and "\r" not in err, err
    assert [line.split("|")[0] for line in err.splitlines() if line.startswith("predict:")][-1] == "predict: 100%", err
