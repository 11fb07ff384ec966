"""The one JSON writer: typed values (frozen dataclasses from the services) to JSON documents.

Decimals follow their annotation (views.Price on the tick, views.Money with at least cents,
views.Quantity as whole shares where whole); other Decimals keep their exact text; times are
ISO-8601, times in UTC (dates too).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from tradectl.render import cents, price_text, quantity_text


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(plain(document)) + "\n")
    sys.stdout.flush()


def plain(value: Any, kind: str | None = None) -> Any:
    """`value` as JSON-ready data; `kind` is the annotation of the field it came from."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kinds = _field_kinds(type(value))
        return {f.name: plain(getattr(value, f.name), kinds[f.name])
                for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return _FORMATS.get(kind or "", _exact)(value)
    if isinstance(value, datetime):  # ISO-8601 in UTC, `Z` for the zone
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, kind) for v in value]
    return value


def _exact(value: Decimal) -> str:
    return format(value, "f")


@cache
def _field_kinds(cls: type) -> dict[str, str | None]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: _kind(hints.get(f.name)) for f in dataclasses.fields(cls)}


def _kind(hint: Any) -> str | None:
    if get_origin(hint) is Annotated:
        return str(hint.__metadata__[0])
    if get_origin(hint) in (Union, types.UnionType, tuple, list):
        return next((k for arg in get_args(hint) if (k := _kind(arg))), None)
    return None


_FORMATS = {"price": price_text, "money": cents, "quantity": quantity_text}
