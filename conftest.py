"""Fixture plugins for the whole suite: the shared ones in ``tests/fixtures.py`` and each
registered app's own ``<app>/tests/fixtures.py``, so an app's fixtures travel with it."""

from importlib.util import find_spec

from solutions import APPS


def _app_fixtures() -> list[str]:
    modules = [f"{app.rpartition('.')[0]}.tests.fixtures" for app in APPS]
    return [module for module in modules if find_spec(module) is not None]


pytest_plugins = ["tests.fixtures", *_app_fixtures()]
