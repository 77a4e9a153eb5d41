"""``minivgg check [PART ...]``: a student's self-check, run on their own copy.

It runs the grader's own checks, with the same hints and the same shares of points, on the
*public* cases that ``minivgg assignment make`` stored in the copy (``minivgg/assignment/public/``:
inputs drawn from seed 0 and the reference's answers to them). The student's code runs in a
child process exactly as when grading. The grader itself draws fresh inputs at grading time, so
passing the self-check by recognising its inputs earns nothing there.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import sandbox
from .checks import Case, Expect
from .parts import PARTS

PUBLIC = Path("assignment") / "public"          # inside the package of a student's copy
PUBLIC_SEED = 0
MANIFEST = "assignment.json"
COPY = Path(__file__).resolve().parents[2]      # the folder holding this minivgg/: in a copy, its root


def save_public(part, built, directory):
    """Store one part's cases ({check: [Case]}) as ``part.json`` and ``part.npz``."""
    meta, arrays = {}, {}
    for check, cases in built.items():
        meta[check] = []
        for i, case in enumerate(cases):
            key = f"{check}.{i}"
            arrays.update({f"{key}.in.{name}": a for name, a in case.inputs.items()})
            expects = []
            for j, e in enumerate(case.expects):
                if e.value is not None:
                    arrays[f"{key}.e{j}"] = e.value
                for k, (wrong, _) in enumerate(e.hints):
                    arrays[f"{key}.e{j}.h{k}"] = wrong
                expects.append({"name": e.name, "what": e.what, "kind": e.kind, "tol": e.tol,
                                "dtype": e.dtype, "info": e.info, "value": e.value is not None,
                                "hints": [hint for _, hint in e.hints],
                                "accumulates": e.accumulates})
            meta[check].append({"what": case.what, "overlapping": case.overlapping,
                                "steps": case.steps, "inputs": sorted(case.inputs),
                                "expects": expects})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{part}.json").write_text(json.dumps(meta))
    np.savez_compressed(directory / f"{part}.npz", **arrays)


def load_public(part, directory):
    """One part's public cases, as save_public stored them: {check: [Case]}."""
    meta = json.loads((directory / f"{part}.json").read_text())
    with np.load(directory / f"{part}.npz", allow_pickle=False) as arrays:
        built = {}
        for check, cases in meta.items():
            built[check] = []
            for i, stored in enumerate(cases):
                key = f"{check}.{i}"
                case = Case(stored["what"], stored["overlapping"])
                case.steps = stored["steps"]
                case.inputs = {name: arrays[f"{key}.in.{name}"] for name in stored["inputs"]}
                for j, e in enumerate(stored["expects"]):
                    hints = [(arrays[f"{key}.e{j}.h{k}"], hint) for k, hint in enumerate(e["hints"])]
                    case.expects.append(Expect(e["name"], e["what"], arrays[f"{key}.e{j}"]
                                               if e["value"] else None, e["kind"], e["tol"],
                                               e["dtype"], hints, e["info"], e["accumulates"]))
                built[check].append(case)
    return built


def check(path=None, parts=None):
    """Self-check the student's copy at ``path`` (default: the copy this package belongs to): a
    GradeReport of the parts asked for (default: those of the copy's assignment.json)."""
    from .grade import GradeReport, grade_part
    root = Path(path) if path else COPY
    public = root / "minivgg" / PUBLIC
    if not public.is_dir():
        raise FileNotFoundError(f"{public} does not exist: run this in a student's copy made by "
                                f"'minivgg assignment make'")
    assigned = json.loads((root / MANIFEST).read_text())["parts"]
    names = [p.name for p in PARTS]
    wanted = list(parts or []) or [name for name in assigned if name in names]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(names)}")
    report = GradeReport("self-check (public cases, seed 0)", [], PUBLIC_SEED)
    with sandbox.Sandbox() as box:
        work = box.new_submission(root / "minivgg")
        for part in (p for p in PARTS if p.name in wanted):
            report.results.append(grade_part(part, load_public(part.name, public), box, work))
    return report


class PartNotDone(Exception):
    """Raised by a notebook's check cell when a part does not pass: it stops "Run All" there."""


def notebook_check(*parts):
    """A notebook's check cell (notebooks.py puts them in a student's copy): print the self-check
    of ``parts`` on the copy this package belongs to; raise PartNotDone unless all of them pass."""
    if not (COPY / "minivgg" / PUBLIC).is_dir():
        raise PartNotDone(f"this notebook imported minivgg from {COPY}, which is not a student's "
                          f"copy: install yours (pip install -e . in its folder) and restart the "
                          f"kernel")
    report = check(COPY, parts)
    print(report)
    failed = [r.part for r in report.results if r.points < r.max_points]
    if failed:
        raise PartNotDone(f"{', '.join(failed)} does not pass yet (the message above says why): "
                          f"fix it, then run this cell again; the cells below need it")
    print("all passed: the notebook goes on with your code")


def add_arguments(parser):
    parser.add_argument("parts", metavar="PART", nargs="*",
                        help="parts to check (default: every part of your assignment)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list each part's checks with their points and messages")
    parser.add_argument("--path", help="your copy (default: the one this minivgg belongs to, the "
                                       "folder holding it)")
    parser.set_defaults(run=run)


def run(args):
    """Exit status 0 when every part checked passed, 1 when not, 2 on a usage error."""
    try:
        report = check(args.path, args.parts)
    except (ValueError, FileNotFoundError) as error:
        print(f"minivgg check: error: {error}", file=sys.stderr)
        return 2
    print(report.text(checks=args.verbose))
    return 0 if report.score == report.max_score else 1


def check_main(argv=None):
    parser = argparse.ArgumentParser(prog="minivgg check", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    add_arguments(parser)
    return run(parser.parse_args(argv))
