"""Every operation of every app is documented for /docs and /redoc: a description, and
realistic examples of what to send and what comes back that are valid by the schema itself.

No backend is needed: the schema is built from the routes alone.
"""

import json
from typing import Any

import jsonschema
import pytest

from common.app import create_app
from common.launcher import installed
from solutions import APPS

APPS = {solution.namespace: solution for solution in installed(APPS)}


@pytest.fixture(scope="module", params=sorted(APPS))
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    solution = APPS[request.param]
    return create_app(solution, solution.settings_model(load_sample_data=False)).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def validate(spec: dict[str, Any], example: Any, schema: dict[str, Any], where: Any) -> None:
    """``example`` is valid by ``schema``, whose ``$ref``s point into the spec's components."""
    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    components = json.dumps(spec["components"]["schemas"]).replace(
        "#/components/schemas/", "#/$defs/"
    )
    try:
        jsonschema.validate(
            example,
            {**json.loads(text), "$defs": json.loads(components)},
            cls=jsonschema.Draft202012Validator,
        )
    except jsonschema.ValidationError as error:
        raise AssertionError(f"{where}: the example is invalid: {error.message}") from None


def is_file(schema: dict[str, Any]) -> bool:
    """A form field that takes a file (or a list of files)."""
    text = json.dumps(schema)
    return "contentMediaType" in text or '"binary"' in text


def examples_of(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """The examples a docs page shows for a body: the media type's, else its schema's."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [e["value"] for e in media["examples"].values()]
    if "examples" in media.get("schema", {}):
        return list(media["schema"]["examples"])
    schema = resolve(spec, media.get("schema", {}))
    if schema.get("type") == "array":
        item = resolve(spec, schema.get("items", {}))
        return [[example] for example in item.get("examples", [])]
    return list(schema.get("examples", []))


def test_every_operation_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        assert operation.get("summary"), name
        assert len(operation.get("description", "")) >= 20, name


def test_every_parameter_has_an_example(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            found = parameter.get("examples") or schema.get("examples")
            if "example" in parameter:
                found = [parameter["example"]]
            assert found, (name, parameter["name"])
            for example in found if isinstance(found, list) else found.values():
                validate(spec, example, schema, (name, parameter["name"]))


def test_every_request_body_has_a_valid_example(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type, media in content.items():
            if media_type == "application/json":
                found = examples_of(spec, media)
                assert found, name
                for example in found:
                    validate(spec, example, media["schema"], name)
            else:  # a form with files: the description shows the request as a command
                assert media_type == "multipart/form-data", (name, media_type)
                assert "curl " in operation["description"] and " -F " in operation["description"]
                fields = resolve(spec, media["schema"])["properties"]
                for field, schema in fields.items():
                    if not is_file(schema):
                        assert schema.get("examples"), (name, field)


def test_every_json_answer_has_a_valid_example(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            if not status.startswith("2") or media is None:
                continue
            found = examples_of(spec, media)
            assert found, (name, status)
            for example in found:
                validate(spec, example, media["schema"], (name, status))
