"""``minivgg reproduce``: the paper's Tables 3-6 at small scale, several seeds, claims judged."""

from .common import FORMATTER, CommandError


def add_parser(commands):
    reproduce = commands.add_parser(
        "reproduce", formatter_class=FORMATTER,
        help="the paper's experiments (Tables 3-6) at small scale, with seeds",
        description="Train every configuration of the paper's Tables 3-6 on the built-in "
                    "shapes with several seeds, test them as the paper does, fuse them, and judge "
                    "the paper's ten claims; writes OUT/paper_claims.json, OUT/paper_claims.png "
                    "and OUT/runs/ (each net's run folder, for 'minivgg evaluate'). The full "
                    "run takes up to an hour on 2 cores.")
    reproduce.add_argument("--quick", action="store_true",
                           help="a small version that learns, in a minute or two on 2 cores: "
                                "Table 3's six nets (A, A-LRN; B-E warm-started from A), 2 "
                                "seeds, the shapes in fixed colours; judges the Table 3 claims "
                                "and fusion")
    reproduce.add_argument("--out", default="reproduce", help="folder for the results")
    reproduce.add_argument("--data", choices=("shapes", "pairs"), default="shapes",
                           help="the built-in data set (pairs: the harder one, two shapes each)")
    reproduce.add_argument("--overwrite", action="store_true",
                           help="replace a run already in OUT")
    reproduce.add_argument("--judge", metavar="RECORD", default=None,
                           help="no training: judge the claims of a recorded run again (RECORD: "
                                "its paper_claims.json) with this version's statistics; "
                                "rewrites RECORD and the figure beside it")
    reproduce.set_defaults(run=cmd_reproduce)


def cmd_reproduce(args):
    from ..reproduce import format_claims, rejudge, run
    if args.judge is not None:
        try:
            report = rejudge(args.judge, command=f"minivgg reproduce --judge {args.judge}")
        except ValueError as error:
            raise CommandError(str(error)) from None
        print(format_claims(report))
        return 0
    command = ("minivgg reproduce" + (" --quick" if args.quick else "") + f" --data {args.data}"
               f" --out {args.out}" + (" --overwrite" if args.overwrite else ""))
    try:
        run("quick" if args.quick else "full", args.out, dataset=args.data,
            overwrite=args.overwrite,
            command=command, log=lambda line: print(line, flush=True))
    except FileExistsError as error:
        raise CommandError(str(error)) from None
    return 0
