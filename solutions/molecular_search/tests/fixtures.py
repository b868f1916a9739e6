"""Molecular search's test fixtures: one app per module and backend pair."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.app import create_app
from solutions.molecular_search.app import SOLUTION
from solutions.molecular_search.settings import MoleculeSettings
from tests.fixtures import make_settings, provide_backend


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_molecules(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One molecular search app for a whole module, per backend pair."""
    workdir = tmp_path_factory.mktemp(f"molecules-{request.param}")
    backend = provide_backend(request.param, request, workdir)
    settings = make_settings(backend, workdir, MoleculeSettings)
    with TestClient(create_app(SOLUTION, settings)) as client:
        yield client
