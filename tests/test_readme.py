"""The README's links (each ``#anchor`` names a heading, as GitHub spells it, and each relative path exists), and
the figures its prose quotes from committed results."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than ``-`` dropped, spaces as ``-``, repeats numbered."""
    seen: dict[str, int] = {}
    anchors, in_code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_every_readme_link_names_a_heading_or_a_file():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    anchors = _anchors(text)
    assert {"quick-start", "development", "licence"} <= anchors
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    broken = [
        target
        for target in targets
        if not target.startswith(("http://", "https://"))
        and (target[1:] not in anchors if target.startswith("#") else not (REPO / target.split("#")[0]).exists())
    ]
    assert not broken, broken


def test_every_readme_link_into_another_markdown_file_names_one_of_its_headings():
    """The README sends its readers to docs/history.md's sections (``docs/history.md#the-speed-of-default``); a
    heading renamed there left the link on the top of the file, which the test above, checking files only, passed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s#:]+\.md)#([^)\s]+)\)", text)
    assert targets
    broken = [
        f"{path}#{anchor}"
        for path, anchor in targets
        if anchor not in _anchors((REPO / path).read_text(encoding="utf-8"))
    ]
    assert not broken, broken


def test_the_validation_commentary_quotes_the_committed_run():
    """The prose under the accuracy table quotes single scenes of the run the table was written from
    (``benchmarks/results/validation/summary.json``), as the table shows them, to 0.1: it gave the hybrid 12-15 % on
    Lampshade1/2, an earlier form's figures, where that run has 12.6 and 9.3 %."""
    summary = json.loads((REPO / "benchmarks" / "results" / "validation" / "summary.json").read_text(encoding="utf-8"))
    bad2 = {scene["scene"]: scene["values"] for scene in summary["scenes"] if scene["set"] == "validation"}

    def shown(scene: str, model: str) -> str:
        return f"{bad2[scene][model]:.1f}"

    def points(scene: str, model: str, other: str) -> str:  # a difference of the figures as the table rounds them
        return f"{abs(round(bad2[scene][model], 1) - round(bad2[scene][other], 1)):.1f}"

    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    quoted = [
        f"bad-2 {points('Cloth2', 'sgbm', 'rtnet-v5')} points lower than SGBM on Cloth2, "
        f"{points('Rocks2', 'sgbm', 'rtnet-v5')} on Rocks2",
        f"Lampshade1/2: {shown('Lampshade1', 'hybrid')} and {shown('Lampshade2', 'hybrid')} % against SGBM's "
        f"{shown('Lampshade1', 'sgbm')} and {shown('Lampshade2', 'sgbm')} % and the network's "
        f"{shown('Lampshade1', 'rtnet-v5')} and {shown('Lampshade2', 'rtnet-v5')} %",
        f"loses to SGBM on Midd2 (by {points('Midd2', 'hybrid', 'sgbm')} points), "
        f"poster ({points('poster', 'hybrid', 'sgbm')}) and Midd1 ({points('Midd1', 'hybrid', 'sgbm')})",
    ]
    assert [line for line in quoted if line not in text] == []


def test_the_quoted_line_of_a_pair_exported_on_first_use_is_the_one_predict_prints():
    """The README quoted ``a: 640x480, anynet, 21.3 ms (+1.9 s once, ...)``: predict gives the size as HxW, says so,
    and ends with the density; a batch's line names the exports as once per size and worker."""
    from types import SimpleNamespace

    import numpy as np

    from rtstereo.batch.outcome import BatchSummary, PairOutcome
    from rtstereo.cli.predict import _summary

    result = SimpleNamespace(
        disparity_px=np.zeros((480, 640), np.float32),
        timings_ms={"total": 21.3, "export": 1900.0},
        density=1.0,
        calibration=None,
    )
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert f"`{_summary('a', 'anynet', result)}`" in text
    done = PairOutcome(0, "a", "l.png", "r.png", status="done", model_ms=21.3, export_ms=1900.0)
    batch = BatchSummary([done], listed=1, elapsed_s=2.0).report()
    assert f"`...{batch[batch.rindex(';') :]}`" in text


def test_the_quoted_rectification_warning_is_the_one_its_figures_give():
    """The README's example had rows off by up to 3.4 px with the right view 2.1 px lower at the centre, figures
    for which the check also says that which view is lower changes across the image, and a median |dy| of "2.2 px",
    which it writes with two decimals."""
    from rtstereo.rectify import RectificationCheck

    text = (REPO / "README.md").read_text(encoding="utf-8")
    example = re.search(
        r"```text\n(rtstereo predict: warning: pair01: the pair does not look rectified.*?)```", text, re.S
    )
    assert example, "the README's example of the rectification warning"
    quoted = " ".join(example.group(1).split())
    figures = re.search(
        r"up to ([\d.]+) px \(the right view lies ([\d.]+) px lower .* median \|dy\| ([\d.]+) px over (\d+) matched",
        quoted,
    )
    up_to, lower, median, matches = (float(figure) for figure in figures.groups())
    check = RectificationCheck(up_to, -lower, median, 30.0, int(matches))
    assert quoted.endswith("; ...")
    assert f"rtstereo predict: warning: pair01: {check.warning()}".startswith(quoted[: -len(" ...")])


def test_the_python_example_prints_the_misalignment_the_verdict_goes_by():
    """It printed ``misalignment_px``, the fit extrapolated to the image corners, as "should be well below 0.75 px":
    rectified pairs whose features lie in one strip read 1-8 px there, which the check finds rectified."""
    from rtstereo.rectify import MAX_MISALIGNMENT_PX, RectificationCheck

    text = (REPO / "README.md").read_text(encoding="utf-8")
    printed = re.search(r"print\(check_rectification\(left, right\)\.(\w+)\)\s+# well below ([\d.]+) px", text)
    assert printed, "the README's Python example of the rectification check"
    assert float(printed.group(2)) == MAX_MISALIGNMENT_PX
    strip = RectificationCheck(3.0, 0.1, 0.2, 30.0, 400, matched_misalignment_px=0.4)  # features in one strip
    assert strip.is_rectified() and getattr(strip, printed.group(1)) < MAX_MISALIGNMENT_PX


def test_the_compare_scores_quoted_for_a_negated_and_a_doubled_map_are_the_example_pairs():
    """The README said "a map and its negation scored 0.007", which the score gave before values below 0 counted as
    invalid: a user who tried it saw 0.499."""
    from rtstereo.compare import compare_disparities
    from rtstereo.io import read_disparity

    truth = read_disparity(REPO / "examples" / "disparity.pfm")
    negated, doubled = (compare_disparities(truth, other).score for other in (-truth, 2 * truth))
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert f"the example pair's ground truth and its negation score {negated:.3f})" in text
    assert f"a map and its double score about {doubled:.1f}," in text


def test_the_quoted_stream_summary_is_the_one_video_prints():
    """The README's example summary of `rtstereo video` ended at the `limit:` line and said the summary "ends with"
    the stages' rates, where every run that writes files prints a `written:` line after it."""
    from rtstereo.stream import StreamSummary

    text = (REPO / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```\n(\d+ frames in [\d.]+ s: .*?)```", text, re.S)
    assert example, "the README's example of the stream summary"
    quoted = example.group(1).rstrip("\n").splitlines()
    rates = {line.split()[0]: line.split() for line in quoted[2:5]}
    stages = {
        name: {"frames": int(rates[name][1]), "fps": float(rates[name][2]), "ms_per_frame": float(rates[name][3])}
        for name in ("capture", "inference", "write")
    }
    head = re.match(r"(\d+) frames in ([\d.]+) s: ([\d.]+) fps", quoted[0])
    frames, wall_s, fps = int(head.group(1)), float(head.group(2)), float(head.group(3))
    outputs = quoted[-1].removeprefix("  written: ").split(", ")
    summary = StreamSummary(
        "two videos", "sgbm", {}, frames, frames, frames, wall_s, fps, stages, "end", outputs=outputs
    )
    assert summary.report().splitlines() == quoted


def test_the_quick_start_speed_figures_are_the_run_it_names():
    """The quick start gives one run's times with its folder of results; they must be that run's medians and ratios,
    as ``bench.json`` holds them, so that the figure and its source cannot drift apart."""
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    quoted = re.search(
        r"\(`(benchmarks/results/[^`]+/)`\): `sgbm` (\d+), `rtnet-v5` (\d+) \(([\d.]+)x\), "
        r"`hybrid` \(`default`\) (\d+) \(([\d.]+)x\)",
        text,
    )
    assert quoted, "the quick start's speed figures"
    folder, sgbm_ms, net_ms, net_ratio, hybrid_ms, hybrid_ratio = quoted.groups()
    rows = {row["model"]: row for row in json.loads((REPO / folder / "bench.json").read_text(encoding="utf-8"))["rows"]}
    assert sgbm_ms == f"{rows['sgbm']['median_ms']:.0f}"
    assert (net_ms, net_ratio) == (f"{rows['rtnet-v5']['median_ms']:.0f}", f"{rows['rtnet-v5']['vs_baseline']:.2f}")
    assert (hybrid_ms, hybrid_ratio) == (f"{rows['hybrid']['median_ms']:.0f}", f"{rows['hybrid']['vs_baseline']:.2f}")


def test_the_accuracy_table_is_the_committed_run():
    """The quick start's accuracy table is written by ``benchmarks/validation_table.py``: each row's means and mean
    EPEs are those of ``benchmarks/results/validation/summary.json``, to the two decimals shown, in its order."""
    summary = json.loads((REPO / "benchmarks" / "results" / "validation" / "summary.json").read_text(encoding="utf-8"))
    text = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| (\*\*)?(validation|report): ", line)]
    assert len(rows) == len(summary["groups"]), rows
    for group, row in zip(summary["groups"], rows):
        cells = [cell.strip().strip("*") for cell in row.split("|")[1:-1]]
        models = summary["models"]
        assert cells[2:6] == [f"{group['mean'][model]:.2f}" for model in models], (group["group"], cells)
        assert cells[7] == " / ".join(f"{group['mean_epe'][model]:.2f}" for model in models), (group["group"], cells)


def test_the_contents_list_every_section():
    """The contents after the introduction link every ``##`` section, so that a section added later is listed too."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    contents = text[text.index("Contents:") : text.index("\n## ")]
    sections, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            sections.append(line[3:].strip())
    assert [section for section in sections if f"[{section}](#" not in contents] == []


def test_every_table_row_has_the_cells_of_its_header():
    """A ``|`` in a cell, even inside backticks, starts another cell on GitHub, which drops cells beyond the
    header's: the live cameras' ``uvc:N`` row lost everything after ``--swap`` for ``right|left``. Such a pipe is
    written ``\\|``."""
    rows_off, header_cells, in_code, previous = [], 0, False, ""
    for number, line in enumerate((REPO / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("|"):
            cells = len(re.findall(r"(?<!\\)\|", line))
            if previous.startswith("|"):
                if cells != header_cells:
                    rows_off.append((number, line[:60]))
            else:
                header_cells = cells
        previous = "" if in_code else line
    assert rows_off == []
