"""Run the reverse image search alone: ``python -m solutions.image_search``."""

from common import serve
from solutions.image_search.app import SOLUTION

if __name__ == "__main__":
    serve(SOLUTION)
