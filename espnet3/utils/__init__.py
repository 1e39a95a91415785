"""Small helpers shared across espnet3."""

from pathlib import Path

# Upstream's espnet3.utils.stages_utils runs stages with the schedulers' job variables, a layer
# above this package: it lives in espnet3/upstream_paths/utils/.
__path__.append(str(Path(__file__).resolve().parent.parent / "upstream_paths" / "utils"))
