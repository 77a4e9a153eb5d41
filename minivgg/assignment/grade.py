"""``minivgg grade PATH ...``: score students' copies without running their code in this process.

The grader holds the reference and the checks. For each part it builds the cases (inputs drawn
from a seed chosen now, unless the instructor's assignment fixes one), computes the reference's
answers, and has a child process (sandbox.py, runner.py) run the *student's* code on the inputs
only. It then judges the arrays that come back and computes every error, hint and score itself.
What is graded comes from the instructor's assignment file (``minivgg assignment make`` writes
it), never from the submission; the reference installation is verified against it first.

Each part's checks carry weights (a layer's forward and backward are separate checks), so a part
earns the share of its points whose checks pass. See docs/INSTRUCTORS.md for the security model.
"""

import argparse
import csv
import hashlib
import importlib
import io
import json
import math
import os
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import sandbox
from .checks import CHECKS, OVERLAP_HINT, Wrong, judge
from .make import MANIFEST, PACKAGE, REFERENCE_ROOT
from .parts import PARTS

SPEC_FORMAT = 1
# The grader's inputs come from the generator seeded [GRADING_STREAM, seed, part]; the public cases
# a student's copy holds, with their answers, from [PUBLIC_SEED, part]: another stream, so even a
# seed of 0 fixed by the instructor does not grade on the inputs whose answers the students have.
GRADING_STREAM = 1
NOT_IMPLEMENTED = "not implemented yet"
EXIT_DONE, EXIT_USAGE, EXIT_REFERENCE, EXIT_INTERRUPTED = 0, 2, 3, 130
# an exception's text -> what it usually means (the targeted hints for crashes)
EXCEPTION_HINTS = (("backward called before forward",
                    "backward needs what forward kept: store x.shape in self._x_shape (and what "
                    "else backward reads) in forward"),
                   ("maximum recursion depth", "two functions call each other: implement it "
                                               "here instead of calling another backend's"))


class ReferenceError_(RuntimeError):
    """The installed reference is not the one the assignment was made with, or it changed."""


def reference_hash(root=REFERENCE_ROOT):
    """sha256 of the reference package's .py files (paths and contents, in order)."""
    digest = hashlib.sha256()
    package = Path(root) / PACKAGE
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def make_spec(parts, seed=None, root=REFERENCE_ROOT):
    """The instructor's assignment file's contents."""
    return {"format": SPEC_FORMAT, "parts": list(parts), "seed": seed,
            "reference_sha256": reference_hash(root)}


def load_spec(path):
    """The instructor's assignment file, validated: (parts, seed, reference hash)."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--assignment {path}: cannot read it ({error})") from None
    names = [p.name for p in PARTS]
    if not isinstance(spec, dict) or "reference_sha256" not in spec or not spec.get("parts"):
        raise ValueError(f"--assignment {path}: not an instructor's assignment file (it needs "
                         f"parts and reference_sha256; a student copy's {MANIFEST} is not one)")
    unknown = [p for p in spec["parts"] if p not in names + _notebook_exercises()]
    if unknown:
        raise ValueError(f"--assignment {path}: unknown part(s) {', '.join(map(str, unknown))}")
    seed = spec.get("seed")
    if seed is not None and not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"--assignment {path}: seed must be a non-negative integer or null")
    return [p for p in spec["parts"] if p in names], seed, spec["reference_sha256"]


def _notebook_exercises():
    from .make import exercise_names
    return exercise_names()


@dataclass
class CheckResult:
    check: str
    weight: float
    passed: bool
    worst_error: float
    message: str


@dataclass
class PartResult:
    part: str
    passed: bool
    points: float
    max_points: int
    worst_error: float          # the largest relative error a check measured (NaN: none measured)
    message: str                # why it lost points ("" when it passed)
    checks: list = field(default_factory=list)
    seconds: float = 0.0        # the child's wall-clock time, start to exit
    cpu: float = 0.0            # the child's CPU seconds


@dataclass
class GradeReport:
    submission: str
    results: list
    seed: int = None
    notes: list = field(default_factory=list)

    @property
    def score(self):
        return round(sum(r.points for r in self.results), 2)

    @property
    def max_score(self):
        return sum(r.max_points for r in self.results)

    def __str__(self):
        return self.text()

    def text(self, checks=False):
        """The table of parts; with ``checks``, each part's checks below it with their points."""
        lines = [sandbox.escape(self.submission, 200) + "".join(f"\nnote: {note}"
                                                               for note in self.notes),
                 f"{'part':<17}{'points':>10}  {'result':<8}{'worst error':>12}  message"]
        for r in self.results:
            error = "-" if math.isnan(r.worst_error) else f"{r.worst_error:.1e}"
            lines.append(f"{r.part:<17}{r.points:>5g}/{r.max_points:<4}  "
                         f"{'passed' if r.passed else 'FAILED':<8}{error:>12}  {r.message}".rstrip())
            for c in r.checks if checks else []:
                share = round(r.max_points * c.weight, 2)
                lines.append(f"  - check {c.check}: {share if c.passed else 0:g}/{share:g}, " +
                             ("passed" if c.passed else f"FAILED: {c.message}"))
        lines.append(f"{'total':<17}{self.score:>5g}/{self.max_score}")
        return "\n".join(lines)

    def as_dict(self):
        def clean(value):      # strict JSON: a NaN (not measured) or infinite error is null
            return None if isinstance(value, float) and not math.isfinite(value) else value
        parts = [{**{k: clean(v) for k, v in asdict(r).items() if k != "checks"},
                  "checks": [{k: clean(v) for k, v in asdict(c).items()} for c in r.checks]}
                 for r in self.results]
        return {"submission": self.submission, "score": self.score, "max_score": self.max_score,
                "seed": self.seed, "notes": self.notes, "parts": parts}

    def to_json(self):
        return json.dumps(self.as_dict(), indent=1, allow_nan=False)


def _reference():
    """The reference package (this grader's own minivgg) with the modules the checks use."""
    package = importlib.import_module(PACKAGE)
    for name in ("kernels.naive", "optim", "arithmetic"):
        importlib.import_module(f"{PACKAGE}.{name}")
    return package


def _text(value, cap=300):
    return sandbox.escape(value if isinstance(value, str) else repr(value), cap)


def crash_message(error):
    """One line for an exception the child reported: ``Type: message (file:line)`` from the
    student's innermost frame, or "not implemented yet (...)"; never the grader's frames."""
    if not isinstance(error, dict):
        return "the student's process reported an unreadable error"
    kind, text = _text(error.get("type", "?"), 60), str(error.get("message", ""))
    first = text.strip().splitlines()[0] if text.strip() else ""
    if kind == "NotImplementedError":
        return f"{NOT_IMPLEMENTED} ({_text(first)})" if first else NOT_IMPLEMENTED
    message = f"{kind}: {_text(first)}" if first else kind
    frames = error.get("frames")
    if isinstance(frames, list) and frames and isinstance(frames[-1], list) and len(frames[-1]) >= 2:
        message += f" ({_text(frames[-1][0], 120)}:{_text(frames[-1][1], 12)})"
    for pattern, hint in EXCEPTION_HINTS:
        if pattern in text:
            message += f"; {hint}"
    return message


def judge_check(name, cases, offset, outcome):
    """(worst error, message) of one check from the child's outcome; message "" when passed."""
    results = {r.get("group"): r for r in outcome.results}
    worst, disjoint_passed = float("nan"), False
    for index, case in enumerate(cases):
        entry = results.get(offset + index)
        if entry is None:
            reason = outcome.status if outcome.status != "finished" else "ended early"
            return worst, f"the part's process {reason} before the case {case.what}"
        saved = entry.get("saved") if isinstance(entry.get("saved"), list) else []
        if "error" in entry and any(e.name not in saved for e in case.expects):
            return worst, crash_message(entry["error"])   # (what was saved before it still counts)
        outputs = {e.name: outcome.array(offset + index, e.name) if e.name in saved else None
                   for e in case.expects}
        for expect in case.expects:
            try:
                worst = np.fmax(worst, judge(expect, outputs[expect.name], outputs))
            except Wrong as wrong:
                hint = wrong.hint
                if expect.accumulates and not wrong.named and case.overlapping and disjoint_passed:
                    hint = f"{hint}; {OVERLAP_HINT}"
                return float(np.fmax(worst, wrong.error)), hint
        disjoint_passed |= not case.overlapping
    return float(worst), ""


def part_cases(part, ref, rng):
    """{check name: its cases} for one part, built with the reference."""
    built = {}
    for name, _ in part.checks:
        build, select = CHECKS[name]
        cases = build(ref, rng)
        if select:
            for case in cases:
                case.expects = [e for e in case.expects if select(e.name)]
        built[name] = cases
    return built


def grade_part(part, built, box, work):
    """Run one part's cases (``built``: {check: [Case]}, see part_cases) in a child and judge
    them: a PartResult."""
    outcome = box.run(work, [case for name, _ in part.checks for case in built[name]])
    checks, offset = [], 0
    for name, weight in part.checks:
        worst, message = judge_check(name, built[name], offset, outcome)
        offset += len(built[name])
        checks.append(CheckResult(name, weight, not message, worst, message))
    points = round(part.points * sum(c.weight for c in checks if c.passed), 2)
    failed = [c for c in checks if not c.passed]
    message = failed[0].message if failed else ""
    if failed and len(failed) < len(checks):
        message = f"{failed[0].check}: {message}"
    if failed and outcome.output:
        message += f" [printed: {outcome.output}]"
    worst = float(np.fmax.reduce([c.worst_error for c in checks]))
    return PartResult(part.name, not failed, points, part.points, worst, message, checks,
                      round(outcome.seconds, 3), round(outcome.cpu, 3))


def _package_dir(path):
    path = Path(path)
    for candidate in (path / PACKAGE, path):
        if candidate.name == PACKAGE and (candidate.is_symlink() or (candidate / "__init__.py").exists()):
            return candidate
    return None


def _submission_name(path):
    path = Path(path).resolve() if not Path(path).is_symlink() else Path(path)
    return path.parent.name if path.name == PACKAGE else path.name


def grade_submission(path, parts, box, seed, ref=None, cache=None):
    """Grade one student's copy at ``path`` (a directory holding minivgg/): a GradeReport.
    ``cache`` keeps each part's cases for the next submission of the same run."""
    ref = ref or _reference()
    cache = {} if cache is None else cache
    name = _submission_name(path)
    package = _package_dir(path)
    report = GradeReport(name, [], seed)
    own = Path(path) / MANIFEST
    if own.is_file() and not own.is_symlink():
        try:
            listed = json.loads(own.read_text()).get("parts")
        except (ValueError, AttributeError, UnicodeDecodeError):
            listed = None
        if listed != [p.name for p in parts] and listed is not None:
            report.notes.append(f"the submission's {MANIFEST} lists other parts; ignored (the "
                                f"instructor's assignment decides)")
    if box.confined is None:
        report.notes.append("the student's code ran with your rights (the grader is not root and "
                            "this kernel has no Landlock): it could read your files; see "
                            "docs/INSTRUCTORS.md")
    if box.network != "filter":
        kernel = f"Landlock ABI {box.abi}" if box.abi else "no Landlock"
        report.notes.append(f"the student's code could use the network: the grader has no socket "
                            f"filter for {os.uname().machine}, " + (
                                "and Landlock refuses TCP only" if box.network else
                                f"and Landlock refuses TCP from ABI {sandbox.NETWORK_ABI} (Linux "
                                f"6.7; this kernel has {kernel})") + "; see docs/INSTRUCTORS.md")
    work, problem = None, None
    if package is None:
        problem = f"no {PACKAGE}/ package in the submission"
    else:
        try:
            work = box.new_submission(package)
        except (ValueError, OSError) as error:      # one unreadable copy: not the class's grade
            problem = str(error)
    for part in parts:
        if work is None:
            report.results.append(PartResult(part.name, False, 0, part.points, float("nan"),
                                             problem))
            continue
        if part.name not in cache:              # the same inputs for every submission of a run
            rng = np.random.default_rng([GRADING_STREAM, seed,
                                         [p.name for p in PARTS].index(part.name)])
            cache[part.name] = part_cases(part, ref, rng)
        report.results.append(grade_part(part, cache[part.name], box, work))
    box.forget(work)
    return report


def grade(paths, parts=None, seed=None, expected_hash=None, limits=None):
    """Grade one path or a list of paths; a GradeReport (one path) or a list of them.

    ``parts``: part names (default: every part of the table); ``seed``: the inputs' seed
    (default: fresh); ``expected_hash``: the reference hash of the instructor's assignment.
    A ReferenceError_ if the installation does not match it or changes while grading.
    """
    single = isinstance(paths, (str, os.PathLike))
    selected = _selected(parts)
    if (REFERENCE_ROOT / MANIFEST).is_file():
        raise ReferenceError_(f"the minivgg installed here ({REFERENCE_ROOT}) is a student's "
                              f"copy; grade with the reference minivgg installed")
    before = reference_hash()
    if expected_hash and before != expected_hash:
        raise ReferenceError_(f"the installed reference ({REFERENCE_ROOT / PACKAGE}) is not the "
                              f"one this assignment was made with (sha256 {before[:12]}..., the "
                              f"assignment says {expected_hash[:12]}...): it was modified or is "
                              f"another version; reinstall it")
    seed = secrets.randbits(62) if seed is None else seed
    ref, cache = _reference(), {}
    reports = []
    with sandbox.Sandbox(limits) as box:
        for path in ([paths] if single else paths):
            reports.append(grade_submission(path, selected, box, seed, ref, cache))
            if reference_hash() != before:
                raise ReferenceError_(f"the installed reference changed while grading {path}: "
                                      f"stop, reinstall it and grade again")
    return reports[0] if single else reports


def _selected(parts):
    names = [p.name for p in PARTS]
    parts = list(parts or names)
    unknown = [name for name in parts if name not in names]
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(names)}")
    return [p for p in PARTS if p.name in parts]


def _write_atomically(path, text, force):
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w", newline="") as f:
        f.write(text)
    os.replace(temporary, path)


def cell(text):
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ or a tab or carriage return
    (a folder's name, an exception's type: the student's choice) could run as a formula."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def csv_text(reports):
    """One row per student and part, then the student's total."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["submission", "part", "points", "max_points", "passed", "message"])
    for report in reports:
        name = cell(report.submission)
        for r in report.results:
            writer.writerow([name, r.part, f"{r.points:g}", r.max_points, int(r.passed),
                             cell(r.message)])
        writer.writerow([name, "total", f"{report.score:g}", report.max_score,
                         int(report.score == report.max_score), ""])
    return out.getvalue()


def gradescope_json(report):
    """Gradescope's results.json: the score and one test per part (and its checks' messages)."""
    tests = []
    for r in report.results:
        lines = [f"{c.check} ({c.weight:.0%}): {'passed' if c.passed else c.message}"
                 for c in r.checks] or [r.message]
        tests.append({"name": r.part, "score": r.points, "max_score": r.max_points,
                      "output": "\n".join(lines), "visibility": "visible"})
    return json.dumps({"score": report.score, "output": f"seed {report.seed}", "tests": tests},
                      indent=1, allow_nan=False)


def add_arguments(parser):
    from ..cli.common import nonnegative_int, positive_int, seconds  # cli imports us
    parser.add_argument("paths", metavar="PATH", nargs="+",
                        help="students' copies (each a directory holding minivgg/)")
    parser.add_argument("--assignment", metavar="FILE",
                        help="the instructor's assignment file from 'minivgg assignment make' "
                             "(parts, seed, reference hash); default: every part, a fresh seed")
    parser.add_argument("--seed", type=nonnegative_int, help="the inputs' seed (default: the assignment's, "
                                                 "else fresh, printed in the report)")
    parser.add_argument("--timeout", type=seconds, default=sandbox.Limits.seconds,
                        help=f"wall-clock seconds per part, at least {sandbox.MIN_SECONDS:g} (CPU "
                             f"seconds likewise)")
    parser.add_argument("--memory", type=positive_int, default=1024,
                        help=f"MiB of memory per part (at least {sandbox.MIN_MEMORY >> 20})")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write one row per student and part")
    parser.add_argument("--gradescope", metavar="FILE",
                        help="write Gradescope's results.json (one PATH only)")
    parser.add_argument("--force", action="store_true", help="replace an existing --csv/--gradescope file")
    parser.set_defaults(run=run)


def run(args):
    """Run ``minivgg grade``. Exit status 0: every submission was graded (whatever the scores);
    2: a usage error; 3: the reference installation failed verification; 130: interrupted."""
    try:
        if args.gradescope and len(args.paths) != 1:
            raise ValueError("--gradescope writes one submission's results: give one PATH")
        for output in (args.csv, args.gradescope):
            if output and Path(output).exists() and not args.force:
                raise FileExistsError(f"{output} exists; pass --force to replace it")
        parts, seed, expected = (load_spec(args.assignment) if args.assignment
                                 else (None, None, None))
        seed = args.seed if args.seed is not None else seed
        limits = sandbox.Limits(seconds=args.timeout, cpu=max(1, math.ceil(args.timeout)),
                                memory=args.memory << 20)
        start = time.monotonic()
        reports = grade(list(args.paths), parts, seed, expected, limits)
    except (ValueError, FileExistsError) as error:
        print(f"minivgg grade: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ReferenceError_ as error:
        print(f"minivgg grade: error: {error}", file=sys.stderr)
        return EXIT_REFERENCE
    except KeyboardInterrupt:
        print("\nminivgg grade: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=1, allow_nan=False))
    else:
        print("\n\n".join(map(str, reports)))
        print(f"\ngraded {len(reports)} submission(s) in {time.monotonic() - start:.1f} s "
              f"(seed {reports[0].seed})", file=sys.stderr)
    if args.csv:
        _write_atomically(args.csv, csv_text(reports), args.force)
    if args.gradescope:
        _write_atomically(args.gradescope, gradescope_json(reports[0]), args.force)
    return EXIT_DONE


def grade_main(argv=None):
    """``minivgg grade PATH... [--assignment FILE] [--json] [--csv FILE] [--gradescope FILE]``."""
    parser = argparse.ArgumentParser(prog="minivgg grade", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    add_arguments(parser)
    return run(parser.parse_args(argv))
