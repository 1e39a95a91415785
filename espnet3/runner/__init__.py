"""Run a ``forward`` over dataset indices with an environment built once per process.

A *provider* (:mod:`espnet3.runner.provider`, :mod:`espnet3.runner.inference_provider`)
builds what ``forward`` needs once per process; a *runner* (:mod:`espnet3.runner.base_runner`)
applies its static ``forward(idx, **env)`` to indices: in this process, on the Dask cluster
of :func:`espnet3.parallel.set_parallel`, or, with ``async_mode=True``, as detached shard jobs.

The shards of an async call can be inspected and read back from any later process, with the
specs directory alone (the Python form of ``espnet3 jobs status/collect DIR``):

    from espnet3.runner import collect, status, wait

    wait("exp/specs")                       # until no shard is pending or running
    results = dict(collect("exp/specs"))    # {index: result}, read in index order

Example:
    >>> from espnet3.runner import BaseRunner, InferenceProvider, collect
    >>> collect.__module__
    'espnet3.runner.jobs_dir'
"""

from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.inference_provider import InferenceProvider
from espnet3.runner.jobs_dir import collect, status, wait
from espnet3.runner.provider import EnvironmentProvider

__all__ = ["BaseRunner", "EnvironmentProvider", "InferenceProvider", "collect", "status", "wait"]
