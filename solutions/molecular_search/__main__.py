"""Run the molecular similarity search alone: ``python -m solutions.molecular_search``."""

from common import serve
from solutions.molecular_search.app import SOLUTION

if __name__ == "__main__":
    serve(SOLUTION)
