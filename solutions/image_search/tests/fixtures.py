"""Image search's test fixtures: one app per module and backend pair, on the session's encoder."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.app import create_app
from common.encoders.efficientnet import EfficientNetLite0Encoder
from solutions.image_search.app import SOLUTION
from solutions.image_search.settings import ImageSettings
from tests.fixtures import make_settings, provide_backend
from tests.helpers import with_encoder


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_images(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    efficientnet: EfficientNetLite0Encoder,
) -> Iterator[TestClient]:
    """One image search app for a whole module, per backend pair."""
    workdir = tmp_path_factory.mktemp(f"images-{request.param}")
    backend = provide_backend(request.param, request, workdir)
    settings = make_settings(
        backend,
        workdir,
        ImageSettings,
        max_upload_bytes=8 * 1024 * 1024,
        image_max_pixels=40_000_000,
    )
    with TestClient(create_app(with_encoder(SOLUTION, efficientnet), settings)) as client:
        yield client
