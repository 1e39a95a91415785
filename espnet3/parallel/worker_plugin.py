"""The Dask worker plugin that builds a ``setup_fn`` environment once when a worker starts.

Kept apart from :mod:`espnet3.parallel.worker_env` because subclassing ``WorkerPlugin``
imports ``distributed``, which sequential runs must not load.

Example (needs a cluster)::

    client.register_plugin(SetupPlugin(setup_fn, setup_key(setup_fn)))
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from espnet3.errors import Espnet3Error
from espnet3.parallel.identity import identity_differences, mismatch_error, process_identity
from espnet3.parallel.worker_env import (
    SetupFn,
    process_env,
    refuse_tasks,
    register_setup,
    setup_key,
)


class SetupPlugin(WorkerPlugin):
    """Builds the environment of ``key`` on every worker, present and future.

    The build runs on the worker's task thread pool rather than its event loop: a model that
    takes minutes to load must not stop the worker's heartbeats, and objects bound to a thread
    are then created on a thread that runs tasks. A failure is kept and raised by the first task
    that needs the environment, so it reaches the caller instead of only the worker's log.
    """

    def __init__(self, setup_fn: SetupFn, key: str | None = None):
        self.setup_fn = setup_fn
        self.key = key or setup_key(setup_fn)
        self.name = self.key

    async def setup(self, worker: Any) -> None:
        register_setup(self.key, self.setup_fn)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Espnet3Error):
            await loop.run_in_executor(
                worker.executors["default"], process_env, self.key, self.setup_fn
            )


class IdentityPlugin(WorkerPlugin):
    """Checks each worker that joins later (a resubmitted job, a scale-up) like the first ones.

    ``parent`` is the parent's identity and ``image`` the first worker's (what
    :func:`~espnet3.parallel.identity.check_worker_identities` accepted). A worker that differs
    runs no task: each task it is given fails with the table of differences, so the run stops
    with it instead of mixing results from two images.
    """

    name = "espnet3-identity"

    def __init__(self, parent: dict[str, str], image: dict[str, str] | None):
        self.parent, self.image = parent, image

    def setup(self, worker: Any) -> None:
        rows = identity_differences(self.parent, {worker.address: process_identity()}, self.image)
        if rows:
            refuse_tasks(mismatch_error(self.parent, rows, 1))


class QuietShutdownPlugin(WorkerPlugin):
    """Makes a local worker ignore Ctrl-C and stay quiet about the tasks a shutdown cancels.

    The parent got the Ctrl-C too and shuts the workers down; each worker would otherwise
    print a KeyboardInterrupt traceback, and one "Async instruction ... ended with
    CancelledError" warning per running task, around the parent's one line. Workers started
    by the cluster already ignore SIGINT (inherited); this covers those a nanny restarts.
    """

    name = "espnet3-quiet-shutdown"

    def setup(self, worker: Any) -> None:
        import logging
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        logging.getLogger("distributed.worker.state_machine").addFilter(_not_a_cancellation)


def _not_a_cancellation(record: Any) -> bool:
    message = record.getMessage()
    return not (message.startswith("Async instruction") and "CancelledError" in message)
