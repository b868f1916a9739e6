"""The apps of this repository.

``APPS`` is the registry the launcher (``python -m solutions``) serves: the module that
declares each app's ``SOLUTION``. A new app adds one line here; nothing in ``common/`` names
an app.
"""

APPS = (
    "solutions.qa_chatbot.app",
    "solutions.image_search.app",
    "solutions.molecular_search.app",
    "solutions.video_analysis.app",
)
