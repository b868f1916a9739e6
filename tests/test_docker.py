"""Static checks of the compose stacks and Dockerfiles (no Docker engine runs here)."""

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from solutions.image_search.settings import ImageSettings
from solutions.molecular_search.settings import MoleculeSettings
from solutions.qa_chatbot.settings import QASettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "qa_chatbot": QASettings,
    "image_search": ImageSettings,
    "molecular_search": MoleculeSettings,
}
STACKS = sorted((ROOT / "docker").glob("*/compose.yaml"))


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_compose_stack(compose_file: Path) -> None:
    assert len(STACKS) == len(SETTINGS)
    compose = yaml.safe_load(compose_file.read_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
        assert "ipv4_address" not in str(service) and "networks" not in service, name
    app = services["app"]
    env = app["environment"]
    settings_fields = set(SETTINGS[compose_file.parent.name].model_fields)
    for key in env:
        assert key.startswith("SEARCH_") and key[7:].lower() in settings_fields, key
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
    for port in app["ports"]:
        assert port.startswith("127.0.0.1:"), port
    assert f":{env['SEARCH_PORT']}/health/ready" in str(app["healthcheck"]["test"])
    assert "9091/healthz" in str(services[milvus.hostname]["healthcheck"]["test"])
    build = app["build"]
    assert build["dockerfile"] == "docker/Dockerfile"
    assert build["args"]["APP"] == compose_file.parent.name
    check_dockerfile(ROOT / build["dockerfile"], build["args"])


def check_dockerfile(dockerfile: Path, args: dict[str, str]) -> None:
    text = dockerfile.read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.MULTILINE):
        for source in sources.replace("${APP}", args["APP"]).split():
            assert (ROOT / source).exists(), source
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert args["EXTRA"] in extras
    needs_torch = any(r.startswith("torch") for r in extras[args["EXTRA"]])
    assert args["TORCH"] == ("cpu" if needs_torch else "none"), args
    assert "exec python -m solutions.${APP}" in text
    assert (ROOT / "solutions" / args["APP"] / "__main__.py").exists()
    assert "USER " in text  # not root
    # The front-end is served by every app alone, from outside site-packages.
    assert "COPY frontend ./frontend" in text and "SEARCH_FRONTEND_DIR=/app/frontend" in text
