"""Box annotation files nobody planned for (``minivgg.data.boxes.load_image_folder_with_boxes``):
each is a CorruptFileError naming the CSV and the line or image, in bounded memory; a
byte-order mark and Windows line ends are read as what they are."""

import tracemalloc

import numpy as np
import pytest

from minivgg.data import boxes
from minivgg.data.boxes import load_image_folder_with_boxes
from minivgg.errors import CorruptFileError, FileTooLargeError

MB = 2**20
GOOD = "file,x0,y0,x1,y1\na/1.png,1,2,10,12\na/2.png,0,0,30,20\nb/x.png,5,5,6,6\n"
BOXES = [[1, 2, 10, 12], [0, 0, 30, 20], [5, 5, 6, 6]]


@pytest.fixture
def folder(tmp_path):
    from PIL import Image
    for cls, names in (("a", ["1.png", "2.png"]), ("b", ["x.png"])):
        (tmp_path / cls).mkdir()
        for name in names:
            Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / cls / name)
    return tmp_path


@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbf" + GOOD.encode(),             # Excel's UTF-8: was "got ['\ufefffile', ...]"
    GOOD.replace("\n", "\r\n").encode(),
    GOOD.replace("1,2,10,12", " 1 , 2 , 10 , 12 ").encode(),
    (GOOD + "\n\n").encode(),
], ids=["byte-order mark", "CRLF", "spaces", "blank lines"])
def test_what_spreadsheets_write_is_read(folder, raw):
    (folder / "boxes.csv").write_bytes(raw)
    assert load_image_folder_with_boxes(folder).boxes.tolist() == BOXES


BAD = {
    "NaN": (GOOD.replace("1,2,10,12", "nan,2,10,12"), r"the box of a/1.png: .*\[nan"),
    "inf": (GOOD.replace("1,2,10,12", "1,2,inf,12"), "the box of a/1.png"),
    "1e400": (GOOD.replace("1,2,10,12", "1,2,1e400,12"), "the box of a/1.png"),
    "x1 < x0": (GOOD.replace("1,2,10,12", "10,2,1,12"), "the box of a/1.png"),
    "outside": (GOOD.replace("5,5,6,6", "5,5,31,6"), r"the box of b/x.png: boxes\[2\]"),
    "missing row": (GOOD.replace("b/x.png,5,5,6,6\n", ""), "1 images have no box in it, e.g. b/x"),
    # a row for an image that is not there was ignored: a renamed or deleted image went unseen
    "extra row": (GOOD + "c/gone.png,1,1,2,2\n", "line 5: c/gone.png is not an image of the"),
    "duplicate": (GOOD + "./a/1.png,1,2,10,12\n", "line 5: ./a/1.png has a second box"),
    "extra column": (GOOD.replace("1,2,10,12", "1,2,10,12,99"), "line 2: 6 fields, not the"),
    "short row": (GOOD.replace("1,2,10,12", "1,2,10"), "line 2: 4 fields"),
    "not a number": (GOOD.replace("1,2,10,12", "0x1,2,10,12"), "line 2: x0, y0, x1, y1 must"),
    "empty": ("", "the first line must be the header"),
}


@pytest.mark.parametrize("text, says", BAD.values(), ids=BAD)
def test_a_bad_annotation_names_the_file_and_where(folder, text, says):
    (folder / "boxes.csv").write_text(text, newline="")
    with pytest.raises(CorruptFileError, match=f"{folder / 'boxes.csv'}.*{says}"):
        load_image_folder_with_boxes(folder)


def test_text_that_is_not_utf8_is_a_corrupt_file(folder):
    (folder / "boxes.csv").write_bytes(GOOD.replace("b/x.png", "b/x\xe9.png").encode("latin-1"))
    with pytest.raises(CorruptFileError, match="boxes.csv: not UTF-8 text"):
        load_image_folder_with_boxes(folder)        # was a bare UnicodeDecodeError


def test_a_long_file_of_rows_for_no_image_stops_at_the_first(folder):
    rows = "".join(f"c/{i}.png,1,1,2,2\n" for i in range(200_000))      # 3.6 MB
    (folder / "boxes.csv").write_text(GOOD + rows)
    tracemalloc.start()
    with pytest.raises(CorruptFileError, match="line 5: c/0.png"):   # the whole table was read
        load_image_folder_with_boxes(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * MB


def test_a_file_over_the_limit_is_refused_before_reading(folder, monkeypatch):
    assert boxes.MAX_ANNOTATION_BYTES == 64 * MB
    monkeypatch.setattr(boxes, "MAX_ANNOTATION_BYTES", MB)
    # a 200 MB line took 400 MB before csv's field limit stopped it (a bare _csv.Error)
    (folder / "boxes.csv").write_text(GOOD + "a/2.png," + "1" * MB + ",1,2,3\n")
    tracemalloc.start()
    with pytest.raises(FileTooLargeError, match=r"over the 1 MiB limit .*MAX_ANNOTATION_BYTES"):
        load_image_folder_with_boxes(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < MB / 2
