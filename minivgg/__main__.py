"""``python -m minivgg``: the same command line as the ``minivgg`` console script."""

import sys

from .cli import main

sys.exit(main())
