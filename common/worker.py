"""Job workers without HTTP: ``python -m solutions.worker`` runs the workers of every
installed app in one process; ``SEARCH_ROLE=worker python -m solutions.<app>`` one app's.

A worker claims load jobs from the jobs table that the app's API processes fill, runs them,
and holds a lease like every process of an app (``common.leases``). It needs what the API
processes use: the same Milvus server, MySQL database, upload folder and data roots. SIGTERM
or Ctrl-C stops it; a job it was running goes back to the queue for another worker.
"""

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from common.app import quiet_openmp, start_app, stop_app
from common.context import AppContext
from common.errors import StartupError
from common.http import configure_logging
from common.settings import Settings
from common.solution import Solution
from common.startup import fail, open_storage

log = logging.getLogger(__name__)


def work(solutions: Sequence[Solution[Any]]) -> None:
    """Run the job workers of ``solutions`` (each with its settings from the environment)
    until SIGTERM or SIGINT; exit 1 if they cannot start, with the cause and the fix in one
    line, as a server's start does."""
    settings = [solution.settings_model(role="worker") for solution in solutions]
    configure_logging(settings[0].log_level)
    quiet_openmp()
    try:
        asyncio.run(_work(solutions, settings))
    except StartupError as error:
        fail(error, settings[0].log_level.upper() == "DEBUG")


async def _work(solutions: Sequence[Solution[Any]], settings: Sequence[Settings]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    storage = await asyncio.to_thread(open_storage, settings[0])
    contexts: list[AppContext] = []
    try:
        for solution, its_settings in zip(solutions, settings, strict=True):
            contexts.append(await start_app(solution, its_settings, storage))
        names = ", ".join(s.namespace for s in solutions)
        log.info("job worker for %s ready (SIGTERM or Ctrl-C stops it)", names)
        await stop.wait()
        log.info("stopping: a running job goes back to the queue")
    finally:
        for context in reversed(contexts):
            await stop_app(context, close_storage=False)
        storage.close()
