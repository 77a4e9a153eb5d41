"""``minivgg summary D``: the per-layer arithmetic of a configuration."""

from .common import CONFIG_NAMES, FORMATTER, CommandError, config, positive_float, positive_int


def add_parser(commands):
    summary = commands.add_parser(
        "summary", formatter_class=FORMATTER, help="per-layer arithmetic of a configuration",
        description="Output shape, parameters, multiply-adds, activation memory and receptive "
                    "field of every layer (nothing is trained or run).")
    summary.add_argument("config", type=config, metavar="CONFIG", help=CONFIG_NAMES)
    summary.add_argument("--input", type=positive_int, default=224, help="input side, pixels")
    summary.add_argument("--width", type=positive_float, default=1.0,
                         help="multiplier of the conv channels")
    summary.add_argument("--fc-width", type=positive_int, default=4096,
                         help="channels of fc6 and fc7")
    summary.add_argument("--num-classes", type=positive_int, default=1000, help="classes")
    summary.set_defaults(run=cmd_summary)


def cmd_summary(args):
    from ..vgg import build_vgg
    try:
        model = build_vgg(args.config, num_classes=args.num_classes, input_size=args.input,
                          width=args.width, fc_width=args.fc_width, init=None)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"VGG {args.config}, {args.input}x{args.input} input, {args.num_classes} classes")
    print(model.summary())
    return 0
