"""Run every installed app in one process: ``python -m solutions``."""

from common.launcher import serve

if __name__ == "__main__":
    serve()
