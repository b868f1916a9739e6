"""Every operation of every app's OpenAPI schema, fuzzed with Schemathesis.

Each app alone, and every app under the launcher (each schema under its prefix, e.g.
``/qa/openapi.json``), gets generated requests, valid and invalid: the schema's examples,
Schemathesis's boundary and negative cases ("coverage"), then random ones. No response may
be a 5xx, and each must have a status code, a content type and a body its schema documents.

The schemas are read at collection time from apps built but not started (an app answers
``/openapi.json`` without its lifespan), so that each operation is a test of its own. The
requests go over HTTP to apps served by uvicorn, each started once for all its operations
(Schemathesis's pytest plugin ends the lifespan of an app it calls in-process after every
test). Milvus Lite + SQLite in a temporary folder, with each app's sample data loaded; then,
with valid requests only and fewer of them, a real Milvus server + a real MySQL-protocol
server. Half the random requests name things that exist (the sample collection, its items,
the jobs): random names alone would mostly get a 404 before reaching any code worth testing.

An operation's test sends all its requests, then fails with every distinct failure found,
each with the shortest request that showed it (a curl command line).
"""

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.errors import FailureGroup
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.app import create_app
from common.encoders import Encoder
from common.launcher import create_site, installed
from common.settings import Settings
from common.solution import Solution
from solutions import APPS
from tests.browser import serving
from tests.fixtures import make_settings, provide_backend
from tests.helpers import with_encoders

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEED = 20261207
# Random requests per operation, after its examples and coverage cases, by backend pair.
MAX_EXAMPLES = {"lite": 10, "server": 3}
SOLUTIONS: dict[str, Solution[Any]] = {s.namespace: s for s in installed(APPS)}
SITE = "site"
# Where the values of a path parameter that exist are listed (``{name}``: the sample's).
LISTINGS = {
    "job_id": "/jobs",
    "item_id": "/collections/{name}/items?limit=5",
    "video_id": "/collections/{name}/videos",
}
# Values random ones seldom are: too long for a file name or a path, a character outside
# MySQL's 3-byte utf8, a line break, a way out of a folder; numbers past 32 and 64 bits.
EDGE_STRINGS = ["x" * 256, "a/" * 2100, "😀", "a\nb", "../" * 3 + "etc/passwd", " "]
EDGE_INTEGERS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 10**20]
Target = tuple[str, str]  # (backend pair, schema): ("lite", "site/qa")
KNOWN: dict[Target, dict[str, list[str]]] = {}  # path parameter values that exist
REQUESTS: Counter[str] = Counter()  # requests sent, by backend pair and schema


def _config(pair: str) -> schemathesis.Config:
    # Invalid requests stop at validation, the same on both backend pairs: the server pair
    # gets only valid ones, which reach its stores (long strings, boundary numbers, ...).
    mode = "all" if pair == "lite" else "positive"
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": mode,
                "max-examples": MAX_EXAMPLES[pair],
                "deterministic": True,
                "no-shrink": True,  # nothing fails inside Hypothesis: the test collects failures
                "database": "none",  # nothing replayed from earlier runs: each run the same
                "dictionaries": {
                    "string": {"dictionary": "strings", "probability": 0.2},
                    "integer": {"dictionary": "integers", "probability": 0.2},
                },
            },
            "dictionaries": {  # sent where the schema allows them
                "strings": {"values": EDGE_STRINGS},
                "integers": {"values": EDGE_INTEGERS},
            },
            "suppress-health-check": ["all"],
            "phases": {
                "stateful": {"enabled": False},
                "coverage": {"generation": {"mode": mode}}
                | ({} if pair == "lite" else {"unexpected-methods": []}),
            },
        }
    )


def _raw_schemas() -> dict[str, dict[str, Any]]:
    """Each app's schema, then each one the launcher serves: named ``qa``, ``site/qa``, ..."""
    served: dict[str, tuple[FastAPI, str]] = {
        name: (create_app(solution), "/openapi.json") for name, solution in SOLUTIONS.items()
    }
    site = create_site(list(SOLUTIONS.values()), Settings())
    served |= {f"{SITE}/{name}": (site, f"/{name}/openapi.json") for name in SOLUTIONS}
    # Not started: no lifespan, no stores.
    return {name: TestClient(app).get(path).json() for name, (app, path) in served.items()}


def _schema(target: Target, raw: dict[str, Any]) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(raw, config=_config(target[0]))

    @schema.hook
    def flatmap_path_parameters(context: Any, parameters: dict[str, Any] | None) -> Any:
        """The parameters as generated, or with every value that exists put in."""
        known = KNOWN.get(target, {})
        if not parameters:
            return st.just(parameters)
        existing = {
            name: st.sampled_from(known[name]) if known.get(name) else st.just(value)
            for name, value in parameters.items()
        }
        return st.one_of(st.just(parameters), st.fixed_dictionaries(existing))

    return schema


RAW_SCHEMAS = _raw_schemas()
SCHEMAS = {
    (pair, target): _schema((pair, target), raw)
    for pair in MAX_EXAMPLES
    for target, raw in RAW_SCHEMAS.items()
    if pair == "lite" or not target.startswith(SITE)  # the launcher only routes: once is enough
}
OPERATIONS = [
    pytest.param(pair, target, method.upper(), path, id=f"{pair} {target} {method.upper()} {path}")
    for pair, target in SCHEMAS
    for path, operations in RAW_SCHEMAS[target]["paths"].items()
    for method in operations
]


def _ids(found: Any) -> list[str]:
    """The ``id`` of every object in a listing."""
    if isinstance(found, dict):
        ids = [str(found["id"])] if "id" in found else []
        return ids + [i for value in found.values() for i in _ids(value)]
    if isinstance(found, list):
        return [i for value in found for i in _ids(value)]
    return []


class Apps:
    """The apps the requests go to, each served when first asked for. One runs at a time:
    the one running stops when another is asked for (and its background jobs with it)."""

    def __init__(self, folder: Path, encoders: dict[str, Encoder]) -> None:
        self.folder = folder
        self.solutions = with_encoders(SOLUTIONS.values(), encoders)
        self.running: Target | None = None
        self.url = ""
        self.session = requests.Session()
        self._stack = ExitStack()

    def url_of(self, pair: str, target: str, request: pytest.FixtureRequest) -> str:
        """The base URL of ``target``'s operations on ``pair``, served from now on."""
        key = (pair, target.split("/")[0])
        if key != self.running:
            self.stop()
            app = self._app(*key, request)
            self.url = self._stack.enter_context(serving(app)).rstrip("/")
            self.running = key
            self._wait_for_samples()
        url = self.url + (target.removeprefix(SITE) if target.startswith(SITE) else "")
        if (pair, target) not in KNOWN:
            KNOWN[pair, target] = self._known(url, RAW_SCHEMAS[target])
        return url

    def stop(self) -> None:
        self._stack.close()
        self.running = None

    def _app(self, pair: str, name: str, request: pytest.FixtureRequest) -> FastAPI:
        folder = self.folder / pair / name
        folder.mkdir(parents=True)
        backend = provide_backend(pair, request, folder, lasting=self._stack)
        # The samples once, on Milvus Lite: on the servers they would take half the time.
        samples = pair == "lite"
        if name != SITE:
            solution = next(s for s in self.solutions if s.namespace == name)
            model = solution.settings_model
            settings = make_settings(backend, folder, model, load_sample_data=samples)
            return create_app(solution, settings)
        (folder / "imports").mkdir()
        env = {
            "SEARCH_MILVUS_URI": backend.milvus_uri,
            "SEARCH_SQL_URL": backend.sql_url,
            "SEARCH_UPLOAD_DIR": str(folder / "uploads"),
            "SEARCH_MEDIA_DIR": str(folder / "media"),
            "SEARCH_DATA_ROOTS": str(folder / "imports"),
            "SEARCH_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
            "SEARCH_LOAD_SAMPLE_DATA": str(samples).lower(),
        }
        with pytest.MonkeyPatch.context() as patch:  # the launcher's apps read their settings
            for variable, value in env.items():
                patch.setenv(variable, value)
            return create_site(self.solutions, Settings())

    def _wait_for_samples(self) -> None:
        """Until the sample loads an app starts on its first start have finished."""
        assert self.running is not None
        pair, name = self.running
        names = [s.namespace for s in self.solutions]
        prefixes = [f"/{n}" for n in names] if name == SITE else [""]
        deadline = time.monotonic() + 300
        for prefix in prefixes:
            for job in self.session.get(f"{self.url}{prefix}/jobs").json():
                url = f"{self.url}{prefix}/jobs/{job['id']}"
                while self.session.get(url).json()["status"] in {"queued", "running"}:
                    assert time.monotonic() < deadline, f"{pair} {name}: sample load too slow"
                    time.sleep(0.1)

    def _known(self, url: str, raw: dict[str, Any]) -> dict[str, list[str]]:
        """Values of path parameters that exist: the sample collection, its items, the jobs."""
        name = next(
            parameter["schema"]["examples"][0]
            for operation in raw["paths"]["/collections/{name}"].values()
            for parameter in operation["parameters"]
            if parameter["name"] == "name"
        )
        known = {"name": [name]}
        for parameter, listing in LISTINGS.items():
            if listing.split("?")[0] in raw["paths"]:
                found = self.session.get(url + listing.format(name=name))
                known[parameter] = _ids(found.json())[:5] if found.ok else []
        known["item_id"] = known.get("item_id") or known.get("video_id", [])  # videos are items
        return known


@pytest.fixture(scope="module")
def apps(
    tmp_path_factory: pytest.TempPathFactory,
    qa_encoders: Encoder,
    efficientnet: Encoder,
    frame_encoder: Encoder,
) -> Iterator[Apps]:
    encoders = {"qa": qa_encoders, "images": efficientnet, "video": frame_encoder}
    served = Apps(tmp_path_factory.mktemp("fuzz"), encoders)
    try:
        yield served
    finally:
        served.stop()
        served.session.close()
        print("\nrequests sent:", dict(REQUESTS))


@dataclass
class Finding:
    """One distinct failure: the shortest request that showed it, and what came back."""

    curl: str
    report: str


def _findings(
    case: schemathesis.Case[Any], error: FailureGroup | Exception, url: str
) -> Iterator[tuple[object, Finding]]:
    """Each failure ``error`` is, with a key that is the same for the same failure."""
    curl = case.as_curl_command(base_url=url)
    if isinstance(error, FailureGroup):  # failed checks: Schemathesis says which are the same
        failures: tuple[Failure, ...] = error.exceptions
        for failure in failures:
            yield failure, Finding(curl, str(error.message))
    else:  # no answer at all
        first_line = (str(error).splitlines() or [""])[0]
        yield (type(error), first_line), Finding(curl, f"{type(error).__name__}: {error}\n{curl}")


@pytest.mark.parametrize(("pair", "target", "method", "path"), OPERATIONS)
def test_operation(
    pair: str, target: str, method: str, path: str, apps: Apps, request: pytest.FixtureRequest
) -> None:
    """No 5xx, and every status, content type and body as documented."""
    schema = SCHEMAS[pair, target]
    url = apps.url_of(pair, target, request)
    found: dict[object, Finding] = {}

    def send(case: schemathesis.Case[Any]) -> None:
        REQUESTS[f"{pair} {target}"] += 1
        try:
            case.call_and_validate(base_url=url, session=apps.session, checks=CHECKS)
        except (FailureGroup, Exception) as error:  # a FailureGroup is no Exception
            for key, finding in _findings(case, error, url):
                if key not in found or len(finding.curl) < len(found[key].curl):
                    found[key] = finding

    # What ``@schema.parametrize()`` runs for each operation: its examples, coverage cases
    # and random cases, as one Hypothesis test. Not that decorator itself: under pytest 9.2
    # every test it makes has the same node id.
    run = build_operation_test(
        config=schema.config,
        operation=schema[path][method],
        test_func=send,
        given_kwargs={},
        feedback=FeedbackSources(),
    )
    run()
    reports = "\n".join(dict.fromkeys(finding.report for finding in found.values()))
    assert not found, f"{len(found)} distinct failures of {target} {method} {path}:\n{reports}"
