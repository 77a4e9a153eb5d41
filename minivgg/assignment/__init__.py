"""Assignments from the reference code: a student's copy with the marked solutions taken out, a
grader that runs the student's code only in limited child processes, and the students'
self-check. See docs/INSTRUCTORS.md.

    make_assignment("hw1", only=["linear", "maxpool"])     # minivgg assignment make hw1 --only ...
    print(grade("subs/alice", expected_hash=...))          # minivgg grade subs/alice --assignment ...
"""

import argparse
import functools

from . import grade as _grade
from . import make as _make
from . import selfcheck as _selfcheck
from .grade import GradeReport, PartResult, grade, grade_main
from .make import MarkerError, make_assignment, make_main
from .parts import PARTS, Part


def add_subcommands(subparsers):
    """Add ``assignment make``, ``grade`` and ``check`` to a CLI's subparsers; each sets ``run(args) -> exit
    code`` as its default, as minivgg/cli's commands do."""
    assignment = subparsers.add_parser("assignment", help="make a student's copy with the "
                                                          "marked solutions taken out")
    # no abbreviated options here either ("--onl" is not "--only"): nested subparsers are plain
    # ArgumentParsers unless told
    nested = assignment.add_subparsers(dest="assignment_command", required=True,
                                       parser_class=functools.partial(argparse.ArgumentParser,
                                                                      allow_abbrev=False))
    make = nested.add_parser("make", help="write the student's copy to OUT")
    _make.add_arguments(make)
    _grade.add_arguments(subparsers.add_parser("grade", help="grade students' copies"))
    _selfcheck.add_arguments(subparsers.add_parser("check", help="a student's self-check of "
                                                                 "their copy"))
