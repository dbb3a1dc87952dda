"""Manifests: CSV and Parquet tables of left,right[,name], and every way one can be wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rtstereo.errors import InputError, MissingDependencyError
from rtstereo.sinks.files import check_pair_name
from rtstereo.sources.manifest import read_manifest


def test_csv_paths_are_relative_to_the_manifest_and_urls_kept(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("Left,Right,Name\ncam0/a.png,cam1/a.png,seq/a\nhttps://x/l.png,/abs/r.png,b\n\n")
    pairs = read_manifest(manifest)
    assert [(p.left, p.right, p.name) for p in pairs] == [
        (str(tmp_path / "cam0/a.png"), str(tmp_path / "cam1/a.png"), "seq/a"),
        ("https://x/l.png", "/abs/r.png", "b"),
    ]


def test_a_manifest_given_as_a_file_url_is_read_and_one_given_as_a_web_url_refused_in_words(tmp_path):
    """`--pairs https://h/pairs.csv` said "manifest not found: https:/h/pairs.csv", the URL made into a path, and
    `--pairs file:///data/pairs.csv` the same of a file that was there."""
    folder = tmp_path / "my pairs"
    folder.mkdir()
    (folder / "pairs.csv").write_text("left,right\ncam0/a.png,cam1/a.png\n")
    pairs = read_manifest((folder / "pairs.csv").as_uri())
    assert [(p.left, p.right) for p in pairs] == [(str(folder / "cam0/a.png"), str(folder / "cam1/a.png"))]
    for url in ("https://example.org/pairs.csv", "s3://bucket/pairs.csv", "file://otherhost/data/pairs.csv"):
        with pytest.raises(InputError) as refused:
            read_manifest(url)
        assert str(refused.value) == (
            f"manifest {url}: a manifest is read from a local file, not from a URL: download it and give its path "
            "(or a file:///path URL); the pairs it lists may be http(s) URLs"
        )


def test_names_default_to_the_left_stems_then_their_paths_then_their_file_names_when_they_collide(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right\nx/a.png,y/a.png\nz/a.png,w/a.png\n")
    assert [p.name for p in read_manifest(manifest)] == ["x/a", "z/a"]
    manifest.write_text("left,right\nx/a.png,y/a.png\nx/a.jpg,w/a.png\n")  # one path but for the suffix
    assert [p.name for p in read_manifest(manifest)] == ["a.png", "a.jpg"]
    # URLs are named by their paths below the address they share; numbered only when those are one path
    manifest.write_text("left,right\nhttps://h.org/c0/l.png,https://h.org/c1/l.png\nhttps://h.org/c2/l.png,r.png\n")
    assert [p.name for p in read_manifest(manifest)] == ["c0/l", "c2/l"]
    manifest.write_text("left,right\nhttps://h.org/get?i=1,https://h.org/r1\nhttps://h.org/get?i=2,r.png\n")
    assert [p.name for p in read_manifest(manifest)] == ["00000_get", "00001_get"]


def test_csv_comments_and_empty_lines_are_skipped_and_errors_name_the_files_line(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text('# rig 2, day 1\n\nleft,right\n# a.png,b.png\n  #c.png,d.png\n"#e.png",f.png\n\ng.png,h.png\n')
    pairs = read_manifest(manifest)
    assert [(Path(p.left).name, Path(p.right).name) for p in pairs] == [("#e.png", "f.png"), ("g.png", "h.png")]
    manifest.write_text("left,right\n# a.png,b.png\n\nc.png,d.png\ne.png\n")
    with pytest.raises(InputError, match="pairs.csv, line 5: the left and right cells must both name an image"):
        read_manifest(manifest)
    manifest.write_text("# only a comment\n")
    with pytest.raises(InputError, match="has no left or right column"):
        read_manifest(manifest)


def test_a_hash_line_inside_a_quoted_multi_line_cell_is_the_cells_text_not_a_comment(tmp_path):
    """Emptied as a comment, the line took the cell's closing quote with it: the rows after it became
    part of the notes cell and their pairs were silently missing (one pair read of three)."""
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(
        'left,right,notes\na.png,b.png,"rig 2\n# re-mounted, see ""log"""\nc.png,d.png,\n# a comment\n'
        'e.png,f.png,"x\n"\n'
    )
    pairs = read_manifest(manifest)
    assert [(Path(p.left).name, Path(p.right).name) for p in pairs] == [
        ("a.png", "b.png"),
        ("c.png", "d.png"),
        ("e.png", "f.png"),
    ]
    # the line numbers are still the file's, a row's first line for one over several lines (it was its last)
    assert [p.listed_at.rsplit(" ", 1)[1] for p in pairs] == ["2", "4", "6"]
    # an escaped quote ("") on a line that leaves the cell open does not close it
    manifest.write_text('left,right,notes\na.png,b.png,"cam ""B""\n# moved"\nc.png,d.png,\n')
    assert [Path(p.left).name for p in read_manifest(manifest)] == ["a.png", "c.png"]


def test_cells_are_trimmed_and_rows_of_blank_cells_skipped(tmp_path):
    """Written by hand: a space after each comma, and a row of spaces."""
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left, right, name\n a.png, b.png, p1 \n  ,  ,\nc.png,d.png,p2\n")
    pairs = read_manifest(manifest)
    assert [(p.left, p.right, p.name) for p in pairs] == [
        (str(tmp_path / "a.png"), str(tmp_path / "b.png"), "p1"),
        (str(tmp_path / "c.png"), str(tmp_path / "d.png"), "p2"),
    ]


def test_a_cell_starting_with_a_tilde_is_taken_from_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    manifest = tmp_path / "m" / "pairs.csv"
    manifest.parent.mkdir()
    manifest.write_text("left,right\n~/cam0/a.png,cam1/a.png\n")
    (pair,) = read_manifest(manifest)  # the left one was m/~/cam0/a.png
    assert (pair.left, pair.right) == (str(tmp_path / "home/cam0/a.png"), str(manifest.parent / "cam1/a.png"))


def test_parquet_errors_name_the_row(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["a.png", "c.png"], "right": ["b.png", ""]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    with pytest.raises(InputError, match="row 2: the left and right cells"):
        read_manifest(tmp_path / "pairs.parquet")


def test_parquet_manifest(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["a/l.png"], "right": ["a/r.png"], "extra": [1]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    (pair,) = read_manifest(tmp_path / "pairs.parquet")
    assert pair.left == str(tmp_path / "a/l.png") and pair.name == "l"


def test_a_parquet_name_column_of_numbers_names_pair_zero_too(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["a/0.png", "a/1.png"], "right": ["b/0.png", "b/1.png"], "name": [0, 1]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    assert [p.name for p in read_manifest(tmp_path / "pairs.parquet")] == ["0", "1"]


def test_a_parquet_manifest_of_binary_columns_reads_the_paths_they_hold(tmp_path):
    """A binary column (paths stored as bytes) gave the paths "b'a/l.png'", the text of the bytes object."""
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": [b"a/l.png"], "right": [b"a/r.png"], "name": [b"seq/0"]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    (pair,) = read_manifest(tmp_path / "pairs.parquet")
    assert (pair.left, pair.right, pair.name) == (str(tmp_path / "a/l.png"), str(tmp_path / "a/r.png"), "seq/0")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pairs.txt", "left,right\na,b\n", "expected a .csv or .parquet"),
        ("pairs.csv", None, "manifest not found"),
        ("pairs.csv", "left,right\n", "lists no pairs"),
        ("pairs.csv", "left,right\na.png,\n", "line 2: the left and right cells must both name an image"),
        ("pairs.csv", "# day 1\n\nleft,right\n\nx.png,y.png\n# b.png,c.png\nd.png\n", "line 7: the left and right"),
        ("pairs.csv", "left,right,name\na.png,b.png,../x\n", "line 2: pair name '../x' would not stay inside"),
        ("pairs.csv", "left,other\na.png,b.png\n", "has no right column"),
        ("pairs.csv", "", "has no left or right column (found: nothing)"),
        ("pairs.csv", "left,right,name\na.png,b.png,x\nc.png,d.png,\n", "filled on some rows only (not on line 3)"),
        ("pairs.csv", "left,right,name\na.png,b.png,x\nc.png,d.png,x\n", "pair name repeats: x (line 2, line 3)"),
        ("pairs.csv", "left,right,name\na.png,b.png,../x\n", "would not stay inside"),
        ("pairs.csv", "left,right,name\na.png,b.png,seq/x\nc.png,d.png,seq//x/\n", "pair name repeats: seq/x"),
        ("pairs.csv", "left,right,name\na,b,x\nc,d,x\ne,f,y\ng,h,y\n", "pair names repeat: x (line 2, line 3); y"),
        ("pairs.csv", "left,right,LEFT\na.png,b.png,c.png\n", "has left more than once"),
        ("pairs.csv", b"left,right\n\xff\xfe,b\n", "cannot read manifest"),
        ("pairs.csv", b"left,right\na.png,b.png\n# caf\xe9\nc\xe9.png,d.png\n", "line 3 is not UTF-8 text"),
        ("pairs.csv", "left;right\na.png;b.png\n", "looks semicolon-separated (its header is 'left;right')"),
        ("pairs.csv", "Left ; Right;name\na.png;b.png;x\n", "looks semicolon-separated"),
        ("pairs.csv", "left\tright\na.png\tb.png\n", "looks tab-separated"),
        ("pairs.parquet", b"not parquet", "cannot read manifest"),
    ],
)
def test_bad_manifests_are_input_errors(tmp_path, name, content, message):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(path)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "pairs.parquet").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"rtstereo\[scale\]"):
        read_manifest(tmp_path / "pairs.parquet")


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "would not stay"), ("/abs", "would not stay"), ("a/../b", "would not stay"), ("a/.hidden", "with '.'")],
)
def test_pair_names_stay_inside_the_output_folder(name, message):
    with pytest.raises(InputError, match=message):
        check_pair_name(name)


@pytest.mark.parametrize(
    ("name", "message"), [("../out", "would not stay"), ("ABS", "would not stay"), (".a", "with '.'")]
)
def test_save_result_writes_nothing_outside_its_folder_or_hidden(tmp_path, name, message):
    """save_result wrote ../out.pfm beside the folder and /abs.pfm where the absolute name said, then failed with
    a bare ValueError; .a.pfm was written hidden, as the staging files are."""
    import numpy as np

    from rtstereo.sinks.files import save_result
    from rtstereo.types import DisparityResult

    name = str(tmp_path / "abs") if name == "ABS" else name
    with pytest.raises(InputError, match=message):
        save_result(DisparityResult(np.ones((2, 3), np.float32)), tmp_path / "out", name, ["pfm"])
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] in ([], ["out"])


def test_a_parquet_manifest_with_a_column_twice_in_two_cases_is_an_input_error(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["l.png"], "right": ["r.png"], "name": ["a"], "NAME": ["b"]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    with pytest.raises(InputError, match="has name more than once"):
        read_manifest(tmp_path / "pairs.parquet")


def test_pair_names_are_given_in_one_written_form():
    assert check_pair_name("seq//a/") == "seq/a"


def test_a_misspelt_column_and_cells_beyond_the_header_are_warned_about(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right,nmae,timestamp\na.png,b.png,x,1\nc.png,d.png,y,2,e.png\ng.png,h.png,z,3,\n")
    with pytest.warns(UserWarning) as caught:
        pairs = read_manifest(manifest)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert "column nmae (did you mean name?) is ignored" in messages[0]  # timestamp is the user's own: not named
    assert "line 3 has more cells than the header's columns" in messages[1]  # line 4's trailing comma: silent
    assert [p.name for p in pairs] == ["a", "c", "g"]
    manifest.write_text("left,right\n" + "".join(f"l{i}.png,r{i}.png,x\n" for i in range(7)))
    with pytest.warns(UserWarning, match=r"line 2, line 3, line 4, line 5, line 6 have more cells than the header"):
        read_manifest(manifest)  # the first five rows named, not all of a long file's


def test_a_manifest_that_is_a_folder_is_not_called_missing(tmp_path):
    """It said "manifest not found: pairs.csv" of a folder that is there."""
    (tmp_path / "pairs.csv").mkdir()
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path / "pairs.csv")
    assert str(info.value) == f"manifest is a folder, not a file: {tmp_path / 'pairs.csv'}"


def test_a_pair_listed_again_under_another_name_is_warned_about(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right,name\na.png,b.png,x\nc.png,d.png,y\n./a.png,b.png,z\nc.png,e.png,w\n")
    with pytest.warns(UserWarning, match=r"pairs.csv: line 4 \(as line 2\) lists a pair again under another name"):
        assert [p.name for p in read_manifest(manifest)] == ["x", "y", "z", "w"]


def test_paths_written_with_windows_backslashes_name_the_files_here(tmp_path):
    """A manifest written on Windows: each pair failed, "image not found: cam0\\a.png"."""
    for file in ("cam0/a.png", "cam1/a.png", "odd\\name.png"):
        (tmp_path / file).parent.mkdir(exist_ok=True)
        (tmp_path / file).write_bytes(b"")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right\r\ncam0\\a.png,cam1\\a.png\r\nodd\\name.png,cam1\\b.png\r\n")
    pairs = read_manifest(manifest)
    assert [(p.left, p.right, p.name) for p in pairs[:1]] == [(f"{tmp_path}/cam0/a.png", f"{tmp_path}/cam1/a.png", "a")]
    # a file whose name holds a backslash is read as written; a file missing both ways is left as written
    assert (pairs[1].left, pairs[1].right) == (f"{tmp_path}/odd\\name.png", f"{tmp_path}/cam1\\b.png")
