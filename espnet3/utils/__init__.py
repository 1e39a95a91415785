"""Small helpers shared across espnet3."""

from pathlib import Path

# Upstream's espnet3.utils.logging_utils and stages_utils log and rank stages with the
# schedulers' job variables, a layer above this package: they live in
# espnet3/upstream_paths/utils/.
__path__.append(str(Path(__file__).resolve().parent.parent / "upstream_paths" / "utils"))
