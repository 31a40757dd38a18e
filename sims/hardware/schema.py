"""Validate snn-deploy's JSON documents against their JSON Schemas with ``jsonschema`` (Draft 2020-12).

Why jsonschema: it implements the whole draft (``maximum``, ``pattern``, ``oneOf``, ...), so a schema can say what
a document promises (a share is at most 1) instead of what a hand-written subset could check; the schema itself
is checked against the meta-schema first, so a typo in a keyword fails loudly instead of checking nothing.
"""

from __future__ import annotations

from typing import Any


def validate(instance: Any, schema: dict) -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``path: problem`` lines (``$``-rooted paths; empty when it
    conforms). A broken schema raises ``jsonschema.SchemaError``."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    errors = Draft202012Validator(schema).iter_errors(instance)
    return sorted(f"{e.json_path}: {e.message}" for e in errors)
