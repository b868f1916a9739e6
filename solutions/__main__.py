"""Run every installed app in one process: ``python -m solutions``."""

from common.launcher import serve
from solutions import APPS

if __name__ == "__main__":
    serve(APPS)
