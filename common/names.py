"""Names that reach Milvus or SQL as identifiers are checked here, and only here."""

import re

from common.errors import InvalidInput

# Lower-case letters, digits and single underscores; starts with a letter. Double
# underscores are reserved for joining an app's namespace to a collection name.
NAME_PATTERN = r"^[a-z](?:_?[a-z0-9])*$"
MAX_NAME_LENGTH = 40
_NAME = re.compile(NAME_PATTERN)


def check_name(name: str, *, what: str = "collection name") -> str:
    """Return ``name`` if it is a safe identifier, else raise a 422 error."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid {what} {name!r}: use 1-{MAX_NAME_LENGTH} lower-case letters, digits and "
            "single underscores, starting with a letter"
        )
    return name


def physical_name(namespace: str, name: str) -> str:
    """The identifier used in both stores for an app's collection: ``<app>__<name>``."""
    return f"{check_name(namespace, what='namespace')}__{check_name(name)}"
