"""Static checks of the compose stacks and Dockerfiles (no Docker engine runs here)."""

import copy
import functools
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator
from sqlalchemy.engine import make_url

from common.settings import Settings
from solutions.image_search.settings import ImageSettings
from solutions.molecular_search.settings import MoleculeSettings
from solutions.qa_chatbot.settings import QASettings
from solutions.video_analysis.settings import VideoSettings
from tests import compose
from tests.compose import Dockerfile, IgnoreFile, interpolate, load_raw, variables

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "qa_chatbot": QASettings,
    "image_search": ImageSettings,
    "molecular_search": MoleculeSettings,
    "video_analysis": VideoSettings,
}
STACKS = sorted((ROOT / "docker").glob("*/compose.yaml"))


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_compose_stack(compose_file: Path) -> None:
    assert len(STACKS) == len(SETTINGS)
    check_stack(compose_file, SETTINGS[compose_file.parent.name])


def check_stack(compose_file: Path, settings: type[Settings], root: Path = ROOT) -> None:
    """The stack's services wait for each other, the app's settings and build are right."""
    compose = yaml.safe_load(compose_file.read_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
        assert "ipv4_address" not in str(service) and "networks" not in service, name
    app = services["app"]
    check_app_service(services, app, settings)
    env = app["environment"]
    for port in app["ports"]:
        assert port.startswith("127.0.0.1:"), port
    assert f":{env['SEARCH_PORT']}/health/ready" in str(app["healthcheck"]["test"])
    build = app["build"]
    assert build["dockerfile"] == "docker/Dockerfile"
    assert build["args"]["APP"] == compose_file.parent.name
    check_dockerfile(root / build["dockerfile"], build["args"], root)


def check_app_service(
    services: dict[str, Any], app: dict[str, Any], settings: type[Settings]
) -> None:
    """An app's service names real settings, and reaches the stack's Milvus and MySQL,
    started (healthy) before it."""
    env = app["environment"]
    settings_fields = set(settings.model_fields)
    for key in env:
        assert key.startswith("SEARCH_") and key[7:].lower() in settings_fields, key
    settings.model_validate({key[7:].lower(): value for key, value in env.items()})
    milvus = urlsplit(env["SEARCH_MILVUS_URI"])
    assert milvus.hostname in services and milvus.port == 19530
    sql = make_url(env["SEARCH_SQL_URL"])
    assert sql.host in services and sql.drivername == "mysql+mysqlconnector"
    mysql_env = services[sql.host]["environment"]
    assert (sql.username, sql.password, sql.database) == (
        mysql_env["MYSQL_USER"],
        mysql_env["MYSQL_PASSWORD"],
        mysql_env["MYSQL_DATABASE"],
    )
    assert set(app["depends_on"]) == {milvus.hostname, sql.host}
    assert "9091/healthz" in str(services[milvus.hostname]["healthcheck"]["test"])


SCALE_OUT = ROOT / "docker" / "qa_chatbot" / "compose.scale-out.yaml"


def test_the_scale_out_stack_runs_api_replicas_and_a_worker_on_shared_stores() -> None:
    """docker/qa_chatbot/compose.scale-out.yaml: the QA stack's backends and image, as two
    API replicas and a job worker (tests/test_scale_out.py runs those roles as processes)."""
    raw = load_raw(SCALE_OUT)
    assert schema_errors(raw) == [] and schema_errors(interpolate(raw, {})) == []
    services = raw["services"]
    single = load_raw(ROOT / "docker" / "qa_chatbot" / "compose.yaml")["services"]
    for backend in ("etcd", "minio", "milvus", "mysql"):
        assert services[backend] == single[backend], backend
    check_stack(ROOT / "docker" / "qa_chatbot" / "compose.yaml", QASettings)
    api, worker = services["api"], services["worker"]
    for service in (api, worker):
        check_app_service(services, service, QASettings)
        assert service["build"] == single["app"]["build"]
        # One volume for uploads (written by an API replica, read by a worker) and models.
        assert service["volumes"] == ["data:/app/data"]
    assert api["environment"]["SEARCH_ROLE"] == "api" and api["deploy"]["replicas"] == 2
    (ports,) = api["ports"]
    first, last = re.fullmatch(r"127\.0\.0\.1:(\d+)-(\d+):8000", ports).groups()  # type: ignore[union-attr]
    assert int(last) - int(first) + 1 == api["deploy"]["replicas"]  # a port per replica
    assert api["healthcheck"] == single["app"]["healthcheck"]
    assert worker["environment"]["SEARCH_ROLE"] == "worker" and "ports" not in worker
    assert worker["healthcheck"] == {"disable": True}  # no HTTP: its lease says it lives


def group(project: dict[str, Any], extra: str) -> list[str]:
    """The requirements of a dependency group, with the groups it names expanded."""
    found = []
    for requirement in project["optional-dependencies"][extra]:
        own = re.fullmatch(re.escape(project["name"]) + r"\[(\w+)\]", requirement.split(";")[0])
        found += group(project, own.group(1)) if own else [requirement]
    return found


def check_dockerfile(dockerfile: Path, args: dict[str, str], root: Path = ROOT) -> None:
    text = dockerfile.read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.MULTILINE):
        for source in sources.replace("${APP}", args["APP"]).split():
            assert (root / source).exists(), source
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert args["EXTRA"] in project["optional-dependencies"]
    needs_torch = any(r.startswith("torch") for r in group(project, args["EXTRA"]))
    assert args["TORCH"] == ("cpu" if needs_torch else "none"), args
    assert "exec python -m solutions.${APP}" in text
    assert (root / "solutions" / args["APP"] / "__main__.py").exists()
    assert "USER " in text  # not root
    # The front-end is served by every app alone, from outside site-packages.
    assert "COPY frontend ./frontend" in text and "SEARCH_FRONTEND_DIR=/app/frontend" in text


@functools.cache
def compose_schema() -> Draft202012Validator:
    """The Compose Specification's schema, vendored in tests/data/compose-spec/."""
    schema = json.loads(compose.SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    errors = compose_schema().iter_errors(document)
    return [f"{list(e.absolute_path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_compose_file_follows_the_compose_specification(compose_file: Path) -> None:
    """Compose validates after interpolation; the raw file (``${HOST_PORT:-8000}``) too."""
    raw = load_raw(compose_file)
    assert schema_errors(raw) == []
    assert schema_errors(interpolate(raw, {})) == []
    assert schema_errors(interpolate(raw, {"HOST_PORT": "8123"})) == []
    # The schema is strict enough to catch a typo or a wrong type.
    broken = copy.deepcopy(raw)
    broken["services"]["app"]["healthchek"] = broken["services"]["app"].pop("healthcheck")
    broken["services"]["mysql"]["healthcheck"]["interval"] = 5
    errors = "\n".join(schema_errors(broken))
    assert "'healthchek' was unexpected" in errors
    assert "'interval']: 5 is not of type 'string'" in errors


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_published_port(compose_file: Path) -> None:
    """Only the app publishes a port: HOST_PORT on 127.0.0.1, 8000 unless set; the
    container's side is the port the app listens on, probes and the image exposes."""
    raw = load_raw(compose_file)
    assert variables(raw) == {"HOST_PORT"}
    assert "HOST_PORT=" in (ROOT / "docker" / "README.md").read_text()
    build = raw["services"]["app"]["build"]
    image = Dockerfile.read(ROOT / build["dockerfile"], build["args"])
    for env, published in [({}, 8000), ({"HOST_PORT": ""}, 8000), ({"HOST_PORT": "8123"}, 8123)]:
        resolved = interpolate(raw, env)
        assert "$" not in json.dumps(resolved)
        services = resolved["services"]
        assert [name for name, s in services.items() if "ports" in s] == ["app"]
        app = services["app"]
        [mapping] = app["ports"]
        host_ip, host_port, container_port = mapping.split(":")
        assert (host_ip, int(host_port)) == ("127.0.0.1", published)
        listens = int(app["environment"]["SEARCH_PORT"])
        assert int(container_port) == listens == int(image.env["SEARCH_PORT"])
        assert image.expose == [listens]
        assert f"//127.0.0.1:{listens}/health/ready" in " ".join(app["healthcheck"]["test"])


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_image_healthcheck_is_the_compose_one(compose_file: Path) -> None:
    """``docker run`` of the image alone probes the same way as the stack does."""
    app = load_raw(compose_file)["services"]["app"]
    image = Dockerfile.read(ROOT / app["build"]["dockerfile"], app["build"]["args"])
    assert app["healthcheck"]["test"] == ["CMD", *image.healthcheck]
    options = {k: v for k, v in app["healthcheck"].items() if k != "test"}
    assert {k: str(v) for k, v in options.items()} == image.healthcheck_options


def test_build_context_is_only_what_the_image_copies() -> None:
    """BuildKit reads docker/Dockerfile.dockerignore: the local venv, caches, git and data
    stay out of the build context, and everything the Dockerfile copies stays in."""
    ignore = IgnoreFile.read(ROOT / "docker" / "Dockerfile.dockerignore")
    for left_out in [
        ".venv/bin/python",
        ".cache/milvus-server/x",
        ".git/HEAD",
        "data/x.db",
        "tests/fixtures.py",
        "solutions/qa_chatbot/tests/fixtures.py",
        "common/__pycache__/app.cpython-311.pyc",
    ]:
        assert ignore.ignored(left_out), left_out
    for app in SETTINGS:
        image = Dockerfile.read(ROOT / "docker" / "Dockerfile", {"APP": app})
        sent: list[str] = []
        for copied in image.copies:
            for source in copied.sources:
                files = compose.context_files(source, ignore)
                assert files, source
                sent += files
        assert not any("__pycache__" in f for f in sent)
        in_repo = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / "solutions" / app).rglob("*")
            if "tests" not in p.relative_to(ROOT / "solutions" / app).parts
        }
        assert {f for f in in_repo if "/data/" in f and (ROOT / f).is_file()} <= set(sent), app
