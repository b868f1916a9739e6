"""The QA chatbot's test fixtures: its settings, an app per test, an app per module."""

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.app import create_app
from common.encoders.e5 import E5Encoder
from common.encoders.minilm import MiniLMEncoder
from common.solution import Solution
from solutions.qa_chatbot.app import SOLUTION
from solutions.qa_chatbot.encoders import QAEncoders
from solutions.qa_chatbot.settings import QASettings
from tests.fixtures import Backend, make_settings, provide_backend
from tests.helpers import with_encoder


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> QASettings:
    return make_settings(backend, tmp_path, QASettings)


@pytest.fixture
def data_root(settings: QASettings) -> Path:
    return settings.data_roots[0]


@pytest.fixture(scope="session")
def qa_encoders(minilm: MiniLMEncoder, e5: E5Encoder) -> QAEncoders:
    """The QA app's encoders, made of the session's shared ones."""
    return QAEncoders({"all-MiniLM-L6-v2": minilm, "multilingual-e5-small": e5})


@pytest.fixture
def qa_solution(qa_encoders: QAEncoders) -> Solution[QASettings]:
    """The QA app with the session's encoders instead of loading its own."""
    return with_encoder(SOLUTION, qa_encoders)


@pytest.fixture
def qa(qa_solution: Solution[QASettings], settings: QASettings) -> Iterator[TestClient]:
    with TestClient(create_app(qa_solution, settings)) as client:
        yield client


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_qa(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    qa_encoders: QAEncoders,
) -> Iterator[TestClient]:
    """One app for a whole module, for tests that each prove they changed nothing."""
    workdir = tmp_path_factory.mktemp(f"shared-{request.param}")
    settings = make_settings(provide_backend(request.param, request, workdir), workdir, QASettings)
    with TestClient(create_app(with_encoder(SOLUTION, qa_encoders), settings)) as client:
        yield client


def store(client: TestClient, collection: str, pairs: dict[str, str]) -> dict[str, str]:
    """Add the pairs one by one; their ids by question."""
    ids = {}
    for question, answer in pairs.items():
        response = client.post(
            f"/collections/{collection}/items", json={"question": question, "answer": answer}
        )
        assert response.status_code == 201, response.text
        ids[question] = response.json()["id"]
    return ids


def generated_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """Questions made of random words: nothing about them is in the sample data."""
    rng = random.Random(seed)
    words = [
        "amber",
        "basalt",
        "cobalt",
        "dune",
        "ember",
        "fjord",
        "glacier",
        "harbor",
        "iris",
        "juniper",
        "kelp",
        "lagoon",
        "meadow",
        "nectar",
        "orchid",
        "prairie",
        "quartz",
        "reef",
        "saffron",
        "tundra",
        "umber",
        "violet",
        "willow",
        "yarrow",
    ]
    verbs = ["paint", "measure", "protect", "map", "photograph", "restore", "survey", "plant"]
    pairs = {}
    while len(pairs) < count:
        a, b = rng.sample(words, 2)
        question = f"How do volunteers {rng.choice(verbs)} the {a} {b} near {rng.choice(words)}?"
        pairs[question] = f"answer {len(pairs)}: {rng.random():.6f}"
    return list(pairs.items())


def write_csv(
    path: Path,
    rows: list[tuple[str, str]],
    header: tuple[str, ...] = ("question", "answer"),
    encoding: str = "utf-8",
) -> Path:
    with path.open("w", encoding=encoding, newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path
