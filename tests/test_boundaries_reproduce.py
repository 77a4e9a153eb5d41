"""``minivgg reproduce --judge RECORD`` on hand-edited records: what it cannot judge, draw or
print is refused in one line naming the file, and the record and its figure stay as they were
(before, a record it could judge but not draw was rewritten and its figure left stale, or the
command ended in a traceback after rewriting)."""

import json
import os

import pytest

from minivgg import reproduce
from minivgg.cli import main

RECORD = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "results",
                      reproduce.JSON_NAME)


def _set(path, value):
    def edit(report):
        *parents, last = path
        for key in parents:
            report = report[key]
        if value is None:
            del report[last]
        else:
            report[last] = value
    return edit


EDITS = {
    "no minutes": (_set(["minutes"], None), "KeyError: 'minutes'"),   # printed after rewriting
    "a negative error": (_set(["runs", 0, "top1"], -50), "outside [0, 100] %: -50"),
    "an error of 1e300": (_set(["runs", 0, "tests", "dense", "top5"], 1e300), "1e+300"),
    "an error in words": (_set(["fusions", 0, "top1"], "low"), "'low'"),
    "runs not a list": (_set(["runs"], {}), "its runs and fusions are not lists"),
    "a curve not a list": (_set(["runs", 0, "curve"], 5), "TypeError"),   # failed in the plot
    "an unknown net": (_set(["runs", 0, "config"], "Z"), "KeyError: 'Z'"),     # likewise
}


@pytest.mark.skipif(not os.path.exists(RECORD), reason="no recorded run")
@pytest.mark.parametrize("edit, says", EDITS.values(), ids=EDITS)
def test_a_record_it_cannot_judge_is_left_as_it_was(edit, says, tmp_path, capsys):
    with open(RECORD) as f:
        report = json.load(f)
    edit(report)
    record = tmp_path / reproduce.JSON_NAME
    record.write_text(json.dumps(report))
    figure = tmp_path / reproduce.FIGURE_NAME
    figure.write_bytes(b"the old figure")
    before = record.read_bytes()
    assert main(["reproduce", "--judge", str(record)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minivgg reproduce: error: {record}: ") and says in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert record.read_bytes() == before and figure.read_bytes() == b"the old figure"
    assert sorted(os.listdir(tmp_path)) == sorted([reproduce.FIGURE_NAME, reproduce.JSON_NAME])
