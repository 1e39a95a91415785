"""The ``espnet3`` command line (also ``python -m espnet3``).

Example:
    >>> main(["--help"])                  # doctest: +SKIP
    usage: espnet3 [-h] [--debug] {create-dataset,run,jobs,cluster} ...
"""

from espnet3.cli.main import main

__all__ = ["main"]
