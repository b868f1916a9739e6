"""Run the video analysis app alone: ``python -m solutions.video_analysis``."""

from common import serve
from solutions.video_analysis.app import SOLUTION

if __name__ == "__main__":
    serve(SOLUTION)
