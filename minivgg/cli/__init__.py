"""The command line: ``minivgg train``, ``minivgg evaluate RUN_DIR``, ``minivgg summary D``.

    minivgg train                      # a small VGG on the built-in shapes, a few minutes
    minivgg train --resume runs/A-20260101-120000 --epochs 30
    minivgg evaluate runs/A-20260101-120000 --method dense+multicrop --flip
    minivgg summary D --input 224      # the per-layer arithmetic of VGG-16

Each command is a module of this package with ``add_parser(commands)`` and its ``cmd_*``
function; ``COMMANDS`` lists them in help order. The commands are thin: they parse options, make
the data and call minivgg.train, .evaluate, .arithmetic (through ``model.summary()``) and
.viz. ``minivgg <command> --help`` lists every option with its default.
"""

import argparse
import functools
import sys

from ..assignment import add_subcommands as add_assignment_commands
from ..errors import CorruptFileError
from . import evaluate, features, localise, reproduce, summary, train
from .common import FORMATTER, CommandError

COMMANDS = (train.add_parser, evaluate.add_parser, summary.add_parser, add_assignment_commands,
            reproduce.add_parser, localise.add_parser, features.add_parser)


def build_parser():
    # allow_abbrev=False everywhere: "--data DIR" must not be read as "--data-seed DIR"
    strict = functools.partial(argparse.ArgumentParser, allow_abbrev=False)
    parser = strict(
        prog="minivgg", formatter_class=FORMATTER,
        description="VGG (Simonyan & Zisserman, ICLR 2015) from scratch: train, evaluate, "
                    "summarise.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=strict)
    for add_parser in COMMANDS:
        add_parser(commands)
    return parser


def main(argv=None):
    """Entry point of the ``minivgg`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, CorruptFileError) as error:   # a broken file: "corrupted checkpoint: ..."
        print(f"minivgg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:             # train.NonFiniteLossError
        print(f"minivgg {args.command}: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:                         # "minivgg summary E | head"
        sys.stderr.close()                          # nothing left to say, and no traceback
        return 0
    except KeyboardInterrupt as error:
        removed = getattr(error, "removed", None)   # set by a run stopped in its first epoch
        print("\ninterrupted" + (f": nothing was saved, the run folder {removed} is removed"
                                if removed else "; a run keeps its last finished epoch's checkpoint"),
              file=sys.stderr)
        return 130
