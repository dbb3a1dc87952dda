"""How LEFT and RIGHT folders become pairs: by position after sorting, with a word when the names disagree."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from rtstereo.errors import InputError
from rtstereo.sources.pairs import resolve_pairs


def _folders(tmp_path: Path, left: list[str], right: list[str]) -> tuple[str, str]:
    for side, names in (("L", left), ("R", right)):
        (tmp_path / side).mkdir()
        for name in names:
            (tmp_path / side / name).write_bytes(b"")  # never read: pairing looks at names only
    return str(tmp_path / "L"), str(tmp_path / "R")


def _pairs_and_warnings(left: str, right: str) -> tuple[list, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = resolve_pairs(left, right)
    return pairs, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    "left, right",
    [
        (["000.png", "001.png", "002.png"], ["000.png", "001.png", "002.png"]),
        (["cam0_001.png", "cam0_002.png"], ["cam1_001.png", "cam1_002.png"]),  # the camera in the name
        (["l_0000.png", "l_0001.png"], ["r_0001.png", "r_0002.png"]),  # numbered from another start
        (["left.png", "x.png"], ["right.png", "y.png"]),  # no numbers to compare
        (["1000.png", "1033.png", "1066.png"], ["1001.png", "1035.png", "1067.png"]),  # free-running timestamps
    ],
)
def test_names_that_keep_one_relation_pair_quietly(tmp_path, left, right):
    pairs, said = _pairs_and_warnings(*_folders(tmp_path, left, right))
    assert len(pairs) == len(left) and said == []


def test_a_missing_image_on_one_side_is_pointed_out(tmp_path):
    left, right = _folders(tmp_path, ["000.png", "001.png", "002.png"], ["000.png", "002.png", "003.png"])
    pairs, said = _pairs_and_warnings(left, right)
    assert [Path(p.right).name for p in pairs] == ["000.png", "002.png", "003.png"]  # by position, as documented
    (message,) = said
    assert "numbers in 2 pairs' names do not follow the first pair's" in message
    assert "e.g. 001.png with 002.png" in message


@pytest.mark.parametrize(
    "left, right",
    [
        (["1.png", "3.png", "4.png"], ["1.png", "2.png", "4.png"]),  # 2 missing on the left, 3 on the right
        (["l_10.png", "l_11.png", "l_13.png", "l_14.png"], ["r_10.png", "r_12.png", "r_13.png", "r_14.png"]),
    ],
)
def test_an_image_missing_on_each_side_is_pointed_out(tmp_path, left, right):
    """As many images on each side, and the relation of the numbers back to the first pair's after the second gap: it
    was taken for free-running timestamps, and 3.png met 2.png unsaid."""
    pairs, said = _pairs_and_warnings(*_folders(tmp_path, left, right))
    assert len(pairs) == len(left)
    (message,) = said
    assert "numbers in 1 pair's names do not follow the first pair's" in message, message


def test_sides_numbered_with_and_without_leading_zeros_pair_each_image_with_its_own_view(tmp_path):
    """Sorted by name, L_10 came before L_9 but R_09 before R_10: every left image met another's right view."""
    left, right = _folders(tmp_path, ["L_8.png", "L_9.png", "L_10.png"], ["R_08.png", "R_09.png", "R_10.png"])
    pairs, said = _pairs_and_warnings(left, right)
    assert [(p.name, Path(p.right).name) for p in pairs] == [
        ("L_8", "R_08.png"),
        ("L_9", "R_09.png"),
        ("L_10", "R_10.png"),
    ]
    assert said == []
    by_name = resolve_pairs(left, right, by_number=False)  # the old rule, still there to ask for
    assert [(p.name, Path(p.right).name) for p in by_name][0] == ("L_10", "R_08.png")


@pytest.mark.parametrize("by_number", ["no", None, 0])
def test_by_number_is_true_or_false(tmp_path, by_number):
    """by_number="no" sorted by number, the opposite of what it said, and None by name."""
    left, right = _folders(tmp_path, ["L_1.png", "L_2.png"], ["R_1.png", "R_2.png"])
    with pytest.raises(InputError, match=rf"^by_number: expected True or False, got {type(by_number).__name__} "):
        resolve_pairs(left, right, by_number=by_number)


def test_sides_of_different_lengths_name_the_images_only_one_side_has(tmp_path):
    left, right = _folders(tmp_path, ["001.png", "002.png", "003.png"], ["001.png", "003.png"])
    with pytest.raises(
        InputError, match=r"left gives 3 images and right gives 2: .* \(numbered on one side only: left 002.png\)"
    ):
        resolve_pairs(left, right)


def test_a_single_pair_of_files_is_never_questioned(tmp_path):
    left, right = _folders(tmp_path, ["im0.png"], ["im1.png"])  # Middlebury's names
    pairs, said = _pairs_and_warnings(str(Path(left) / "im0.png"), str(Path(right) / "im1.png"))
    assert len(pairs) == 1 and said == []


def test_the_images_only_one_side_has_are_named_by_their_frame_number(tmp_path):
    left, right = _folders(
        tmp_path, ["cam0_0001.png", "cam0_0002.png", "cam0_0003.png"], ["cam1_0001.png", "cam1_0002.png"]
    )
    with pytest.raises(InputError, match=r"\(numbered on one side only: left cam0_0003.png\)"):
        resolve_pairs(left, right)


def test_images_on_one_side_only_are_named_three_at_most(tmp_path):
    lefts = [f"{i:03d}.png" for i in range(6)]
    left, right = _folders(tmp_path, lefts, ["000.png"])
    only = r"\(numbered on one side only: left 001.png, left 002.png, left 003.png, \.\.\.\)"
    with pytest.raises(InputError, match=only):
        resolve_pairs(left, right)


def test_a_url_whose_path_names_no_file_gets_a_numbered_pair_name():
    from rtstereo.sources.pairs import unique_names

    assert unique_names(["https://h.org/", "https://x.org/a.png"]) == ["pair00000", "a"]


def test_a_pair_from_urls_is_named_as_the_file_reads_not_percent_encoded(tmp_path):
    left, right = tmp_path / "links é 1.png", tmp_path / "rechts é 1.png"
    (pair,) = resolve_pairs(left.as_uri(), right.as_uri())  # file:///.../links%20%C3%A9%201.png
    assert pair.name == "links é 1"
    (pair,) = resolve_pairs("https://x.org/cam0/left%20frame.png?raw=1", "https://x.org/cam1/right%20frame.png")
    assert pair.name == "left frame"
    assert resolve_pairs(str(_folders(tmp_path, ["a%20b.png"], ["c.png"])[0]), str(tmp_path / "R"))[0].name == "a%20b"


def test_hidden_files_in_a_folder_are_left_out_as_a_glob_leaves_them_out(tmp_path):
    left, right = _folders(tmp_path, ["a.png", "._a.png", "b.png"], ["a.png", "b.png"])  # macOS "._" companion
    assert [p.name for p in resolve_pairs(left, right)] == ["a", "b"]
    assert [p.name for p in resolve_pairs(f"{left}/*.png", f"{right}/*.png")] == ["a", "b"]


def test_a_double_star_glob_spans_any_number_of_folders_as_a_shell_reads_it(tmp_path):
    for side in ("L", "R"):
        for name in ("top.png", "a/0001.png", "a/b/0002.png"):
            (tmp_path / side / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / side / name).write_bytes(b"")
    pairs = resolve_pairs(f"{tmp_path}/L/**/*.png", f"{tmp_path}/R/**/*.png")
    assert [Path(p.left).relative_to(tmp_path / "L").as_posix() for p in pairs] == [
        "a/0001.png",
        "a/b/0002.png",
        "top.png",
    ]


@pytest.mark.parametrize("glob", [False, True])
def test_a_link_to_a_missing_file_is_listed_and_fails_its_own_pair_naming_the_link(tmp_path, glob):
    """A link whose file is gone (a drive not mounted) was left out of its folder's listing: the folders no longer
    gave as many images each ('numbered on one side only: right 2.png', of a file that was on both sides), and the
    whole batch was refused."""
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for name in ("1.png", "2.png", "3.png"):
            if (side, name) != ("L", "2.png"):
                (tmp_path / side / name).write_bytes(b"")
    (tmp_path / "L" / "2.png").symlink_to(tmp_path / "gone" / "2.png")
    left, right = (str(tmp_path / side / "*.png") if glob else str(tmp_path / side) for side in ("L", "R"))
    pairs = resolve_pairs(left, right)
    assert [(Path(p.left).name, Path(p.right).name) for p in pairs] == [(n, n) for n in ("1.png", "2.png", "3.png")]
    link, gone = tmp_path / "L" / "2.png", tmp_path / "gone" / "2.png"
    said = f"image not found: {link} is a link to {gone}, which does not exist"
    with pytest.raises(InputError, match=re.escape(said)):
        pairs[1].load()


def test_a_folder_of_files_in_formats_it_does_not_list_names_them(tmp_path):
    """A folder of .avif or .jp2 files (which OpenCV may read one by one) said 'holds no images', as an empty one."""
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for name in ("1.avif", "2.jp2", "3.gif", "4.heic"):
            (tmp_path / side / name).write_bytes(b"")
    said = r"left folder .*L holds 4 files \(1.avif, 2.jp2, 3.gif, ...\) but no images of the formats a folder lists"
    with pytest.raises(InputError, match=said):
        resolve_pairs(str(tmp_path / "L"), str(tmp_path / "R"))


def test_a_folder_of_sub_folders_points_to_a_glob_and_folders_named_like_images_are_not_images(tmp_path):
    (tmp_path / "L" / "seq1").mkdir(parents=True)
    (tmp_path / "R").mkdir()
    with pytest.raises(InputError, match=r"holds no images .* not its sub-folders': .* '.*/L/\*\*/\*\.png'"):
        resolve_pairs(str(tmp_path / "L"), str(tmp_path / "R"))
    (tmp_path / "R" / "x.png").mkdir()  # a folder, not an image
    (tmp_path / "R" / "a.png").write_bytes(b"")
    (tmp_path / "L" / "a.png").write_bytes(b"")
    assert [Path(p.right).name for p in resolve_pairs(str(tmp_path / "L"), str(tmp_path / "R"))] == ["a.png"]


def test_left_and_right_giving_the_same_images_are_refused(tmp_path):
    left, _ = _folders(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    with pytest.raises(InputError, match=r"left and right give the same image .*a\.png and 1 more: a stereo pair"):
        resolve_pairs(left, f"{tmp_path}/L/../L")  # one folder reached two ways
    with pytest.raises(InputError, match=r"the same image .*b\.png: a stereo pair needs its two views"):
        resolve_pairs(f"{left}/b.png", f"{left}/b.png")


def test_a_manifest_row_naming_one_image_twice_fails_when_read(tmp_path):
    from rtstereo.sources.pairs import PairSource

    image = tmp_path / "a.png"
    image.write_bytes(b"")
    with pytest.raises(InputError, match="left and right are the same image .*a.png"):
        PairSource(str(image), str(image), "a").load()


def test_a_folder_and_a_link_to_it_give_the_same_images(tmp_path):
    left, _ = _folders(tmp_path, ["a.png"], ["a.png"])
    (tmp_path / "link").symlink_to(left, target_is_directory=True)
    with pytest.raises(InputError, match="left and right give the same image"):
        resolve_pairs(left, str(tmp_path / "link"))


def test_a_quoted_glob_or_folder_starting_with_a_tilde_is_taken_from_the_home_folder(tmp_path, monkeypatch):
    _folders(tmp_path, ["a.png"], ["a.png"])
    monkeypatch.setenv("HOME", str(tmp_path))
    (pair,) = resolve_pairs("~/L/*.png", "~/R")
    assert (pair.left, pair.right) == (str(tmp_path / "L" / "a.png"), str(tmp_path / "R" / "a.png"))


def test_a_glob_gives_its_images_only_as_a_folder_does(tmp_path):
    left, right = _folders(tmp_path, ["a.png", "b.JPG", "notes.txt", "calib.json"], ["a.png", "b.jpg", "notes.txt"])
    pairs = resolve_pairs(f"{left}/*", f"{right}/*")
    assert [(Path(p.left).name, Path(p.right).name) for p in pairs] == [("a.png", "a.png"), ("b.JPG", "b.jpg")]
    with pytest.raises(InputError, match=r"left pattern '.*\*\.t\*' matches 1 file \(notes.txt\) but no images"):
        resolve_pairs(f"{left}/*.t*", f"{right}/*.t*")


def test_left_images_in_one_folder_differing_in_suffix_alone_are_named_by_their_file_names(tmp_path):
    left, right = _folders(tmp_path, ["a.jpg", "a.png", "b.png"], ["a.jpg", "a.png", "b.png"])
    assert [p.name for p in resolve_pairs(left, right)] == ["a.jpg", "a.png", "b.png"]


def test_a_globs_wildcard_parts_ignore_case_as_a_folders_suffixes_do(tmp_path):
    left, right = _folders(tmp_path, ["IMG_0001.PNG", "img_0002.png"], ["IMG_0001.PNG", "img_0002.Png"])
    pairs = resolve_pairs(f"{left}/img_*.png", f"{right}/*.png")  # both missed IMG_0001.PNG on Linux
    assert [(Path(p.left).name, Path(p.right).name) for p in pairs] == [
        ("IMG_0001.PNG", "IMG_0001.PNG"),
        ("img_0002.png", "img_0002.Png"),
    ]


def test_one_picture_twice_under_two_names_is_refused_when_read(tmp_path, capsys):
    """A link under another name, or a copy, passed the name checks above: the pair ran, and its map was 0
    everywhere, without a word."""
    import cv2

    from rtstereo.cli import main

    from ..conftest import make_textured_pair

    left, right = make_textured_pair(48, 72)
    cv2.imwrite(str(tmp_path / "left.png"), left)
    cv2.imwrite(str(tmp_path / "copy.png"), left)
    (tmp_path / "link.png").symlink_to(tmp_path / "left.png")
    sgbm = ["--model", "sgbm", "--max-disp", "16", "-q"]
    for twin in ("link.png", "copy.png"):
        code = main(["predict", str(tmp_path / "left.png"), str(tmp_path / twin), *sgbm, "-o", str(tmp_path / "d.pfm")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("rtstereo predict: error: left and right are the same picture"), err
        assert err.count("\n") == 1 and not (tmp_path / "d.pfm").exists()
    for side, image in (("L", left), ("R", right)):  # in a batch, that pair fails and the others are done
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "a.png"), image)
        cv2.imwrite(str(tmp_path / side / "b.png"), left)
    code = main(["predict", str(tmp_path / "L"), str(tmp_path / "R"), *sgbm, "-o", str(tmp_path / "out")])
    assert code == 1 and "failed: b (" in capsys.readouterr().err
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.pfm")) == ["a"]


def test_a_folder_gives_every_image_opencv_decodes(tmp_path):
    """.jfif, .jpe (JPEG), .pnm, .pbm (Netpbm) were left out of a folder without a word."""
    import cv2
    import numpy as np

    from rtstereo.io import read_image

    names = ["0.jfif", "1.jpe", "2.pnm", "3.pbm", "4.png"]
    left, right = _folders(tmp_path, names, names)
    image = np.full((8, 12), 200, np.uint8)
    for name in names:
        suffix = ".jpg" if name.endswith((".jfif", ".jpe")) else Path(name).suffix
        (Path(left) / name).write_bytes(cv2.imencode(suffix, image)[1].tobytes())
    pairs, said = _pairs_and_warnings(left, right)
    assert [Path(pair.left).name for pair in pairs] == names and not said
    assert all(read_image(Path(left) / name).shape == (8, 12, 3) for name in names)


def test_sides_given_as_paths_pair_and_lists_are_refused_in_one_line(tmp_path):
    left, right = _folders(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    assert [p.name for p in resolve_pairs(Path(left), Path(right))] == ["a", "b"]
    with pytest.raises(InputError, match=r"left: expected a file, folder, glob or URL \(str or Path\), got list; .*"):
        resolve_pairs([f"{left}/a.png"], [f"{right}/a.png"])  # a bare TypeError from os.path before
    with pytest.raises(InputError, match=r"right: expected .* got int"):
        resolve_pairs(left, 5)


def test_a_double_star_glob_leaves_out_the_images_a_link_to_a_folder_above_leads_back_to(tmp_path):
    left, right = _folders(tmp_path, ["a.png"], ["a.png"])
    for side in (left, right):
        (Path(side) / "s").mkdir()
        (Path(side) / "s" / "b.png").write_bytes(b"")
        (Path(side) / "s" / "loop").symlink_to("..", target_is_directory=True)  # s/loop/s/loop/... to the limit
    pairs, said = _pairs_and_warnings(f"{left}/**/*.png", f"{right}/**/*.png")
    assert [Path(p.left).relative_to(left).as_posix() for p in pairs] == ["a.png", "s/b.png"]
    assert len(said) == 2 and all("s/loop is a link to a folder above it (a loop)" in m for m in said), said
    pairs, said = _pairs_and_warnings(f"{left}/*/../s/*.png", f"{right}/*/../s/*.png")  # a way back, no link
    assert [Path(p.left).name for p in pairs] == ["b.png"] and not said, said
