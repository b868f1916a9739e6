"""Run the load-job workers of every installed app, without HTTP: ``python -m solutions.worker``.

For deployments that split serving from loading (``SEARCH_ROLE=api`` processes in front,
workers behind): see docs/scale-out.md.
"""

from common.launcher import installed
from common.worker import work
from solutions import APPS

if __name__ == "__main__":
    solutions = list(installed(APPS))
    if not solutions:
        raise SystemExit("no app is installed: run scripts/install qa,image")
    work(solutions)
