"""Fixture plugins for the whole suite: the shared ones in ``tests/fixtures.py`` and each
registered app's own ``<app>/tests/fixtures.py``, so an app's fixtures travel with it."""

from importlib.util import find_spec

from solutions import APPS


def _has(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:  # the app has no tests package
        return False


def _app_fixtures() -> list[str]:
    modules = (f"{app.rpartition('.')[0]}.tests.fixtures" for app in APPS)
    return [module for module in modules if _has(module)]


pytest_plugins = ["tests.fixtures", *_app_fixtures()]
