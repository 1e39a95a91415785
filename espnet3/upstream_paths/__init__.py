"""Upstream ESPnet3's import paths of modules whose code needs a higher layer than their package.

``espnet3.parallel.base_runner``, ``env_provider`` and ``inference_provider`` name the runner
(:mod:`espnet3.runner`), which builds on :mod:`espnet3.parallel`; ``espnet3.utils.logging_utils``
and ``stages_utils`` ask the schedulers for their job and rank variables. Kept in their packages they would make those
import the layer above them. They live in ``upstream_paths/<package>/``, and each package
lists that folder in its ``__path__``, so upstream's import paths work unchanged.
"""
