"""``python -m espnet3``: the same command line as the ``espnet3`` script."""

import sys

from espnet3.cli import main

sys.exit(main())
