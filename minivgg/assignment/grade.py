"""``minivgg grade [PATH]``: run every part's checks on a student's copy and score it.

The student's ``PATH/minivgg`` is imported under its own name, ``student_minivgg``: its relative
imports stay inside that name, so nothing the student wrote can take the place of a module of the
reference ``minivgg`` in ``sys.modules``; the student's modules are forgotten again afterwards.
Each part scores all its points when all its checks pass, else zero, with a one-line message:
the check's hint, "not implemented yet" for a NotImplementedError, or the exception's first line
and the place in the student's code it came from. The parts graded are those of
``PATH/assignment.json`` (written by ``minivgg assignment make``), else every part of the table.
"""

import argparse
import contextlib
import importlib.util
import json
import math
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from .checks import CHECKS, Package, Wrong
from .make import MANIFEST, PACKAGE, REFERENCE_ROOT
from .parts import PARTS

STUDENT = "student_minivgg"


@dataclass
class PartResult:
    part: str
    passed: bool
    points: int
    max_points: int
    worst_error: float          # the largest relative error a check measured (NaN: none measured)
    message: str                # why it failed ("" when it passed)


@dataclass
class GradeReport:
    results: list

    @property
    def score(self):
        return sum(r.points for r in self.results)

    @property
    def max_score(self):
        return sum(r.max_points for r in self.results)

    def __str__(self):
        lines = [f"{'part':<17}{'points':>8}  {'result':<8}{'worst error':>12}  message"]
        for r in self.results:
            error = "-" if math.isnan(r.worst_error) else f"{r.worst_error:.1e}"
            lines.append(f"{r.part:<17}{r.points:>4}/{r.max_points:<3}  "
                         f"{'passed' if r.passed else 'FAILED':<8}{error:>12}  {r.message}")
        lines.append(f"{'total':<17}{self.score:>4}/{self.max_score:<3}")
        return "\n".join(lines)

    def to_json(self):
        results = [{**asdict(r), "worst_error": None if math.isnan(r.worst_error) else r.worst_error}
                   for r in self.results]
        return json.dumps({"score": self.score, "max_score": self.max_score, "parts": results},
                          indent=1)


def _package_dir(path):
    path = Path(path)
    for candidate in (path / PACKAGE, path):
        if (candidate / "__init__.py").is_file() and (candidate / "backend.py").is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no minivgg package (expected {path / PACKAGE}/__init__.py)")


def _forget_student():
    for name in [n for n in sys.modules if n == STUDENT or n.startswith(STUDENT + ".")]:
        del sys.modules[name]


@contextlib.contextmanager
def student_package(path):
    """Import the package at ``path`` (a directory holding minivgg/, or minivgg/ itself) as
    ``student_minivgg``; yields its :class:`Package` and removes its modules afterwards."""
    directory = _package_dir(path)
    _forget_student()
    spec = importlib.util.spec_from_file_location(STUDENT, directory / "__init__.py",
                                                  submodule_search_locations=[str(directory)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[STUDENT] = module
    try:
        spec.loader.exec_module(module)
        yield Package(STUDENT)
    finally:
        _forget_student()


def _one_line(error, directory):
    """``Type: first line of the message (file:line)``, the place being the innermost frame in
    the student's package."""
    text = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve().is_relative_to(directory)]
    if frames:
        where = Path(frames[-1].filename).resolve().relative_to(directory.parent)
        text += f" ({where.as_posix()}:{frames[-1].lineno})"
    return text


def grade_part(part, student, directory):
    """Run one part's checks on the student's package; a PartResult."""
    reference, errors = Package(PACKAGE), []
    worst = float("nan")
    try:
        with student.module("backend").use_backend("naive"):
            for name in part.checks:
                errors.append(CHECKS[name](student, reference))
                worst = max(errors)
    except NotImplementedError as error:
        return PartResult(part.name, False, 0, part.points, worst,
                          f"not implemented yet ({error})" if str(error) else "not implemented yet")
    except Wrong as wrong:
        return PartResult(part.name, False, 0, part.points, wrong.error, wrong.hint)
    except Exception as error:         # anything else the student's code raised
        return PartResult(part.name, False, 0, part.points, worst, _one_line(error, directory))
    return PartResult(part.name, True, part.points, part.points, worst, "")


def _assigned(path, parts):
    """The parts to grade: ``parts`` if given, else the copy's assignment.json, else all."""
    names = [p.name for p in PARTS]
    if not parts:
        manifest = Path(path) / MANIFEST
        parts = json.loads(manifest.read_text())["parts"] if manifest.is_file() else names
        parts = [name for name in parts if name in names]      # notebook exercises are not graded
    unknown = [name for name in parts if name not in names]
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(names)}")
    return [p for p in PARTS if p.name in parts]


def grade(path=".", parts=None):
    """Grade the student's copy at ``path``: a GradeReport with one PartResult per part."""
    if (REFERENCE_ROOT / MANIFEST).is_file():
        raise ValueError(f"the minivgg installed here ({REFERENCE_ROOT}) is itself a student's "
                         f"copy; grade with the reference minivgg installed")
    selected = _assigned(path, parts)
    directory = _package_dir(path).resolve()
    try:
        with student_package(path) as student:
            return GradeReport([grade_part(part, student, directory) for part in selected])
    except Exception as error:         # the package itself does not import
        message = f"the package does not import: {_one_line(error, directory)}"
        return GradeReport([PartResult(p.name, False, 0, p.points, float("nan"), message)
                            for p in selected])


def add_arguments(parser):
    parser.add_argument("path", metavar="PATH", nargs="?", default=".",
                        help="the student's copy (a directory holding minivgg/); default: here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--parts", metavar="NAMES", default="",
                        help="comma-separated parts to grade (default: those of assignment.json)")
    parser.set_defaults(run=run)


def run(args):
    """Run ``minivgg grade`` with parsed arguments. Exit code 0: full marks; 1: not; 2: error."""
    try:
        report = grade(args.path, [name for name in args.parts.split(",") if name])
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report)
    return 0 if report.score == report.max_score else 1


def grade_main(argv=None):
    """``minivgg grade [PATH] [--json] [--parts NAMES]``."""
    parser = argparse.ArgumentParser(prog="minivgg grade", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
