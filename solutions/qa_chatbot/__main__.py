"""Run the QA chatbot alone: ``python -m solutions.qa_chatbot``."""

from common import serve
from solutions.qa_chatbot.app import SOLUTION

if __name__ == "__main__":
    serve(SOLUTION)
