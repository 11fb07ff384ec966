"""Rendering for `tradectl db upgrade` and `tradectl db current`."""

from __future__ import annotations

from tradectl.render import one_line, stdout
from tradectl.render.json import print_json


def schema_report(url: str, revision: str | None, head: str, as_json: bool, *,
                  upgraded_from: str | None = None, upgraded: bool = False) -> None:
    """The database's revision; after `db upgrade`, also what it was before."""
    if as_json:
        document: dict[str, object] = {"database": url, "revision": revision, "head": head,
                                       "up_to_date": revision == head}
        if upgraded:
            document["before"] = upgraded_from
        print_json(document)
    elif upgraded:
        stdout().print(f"{one_line(url)}: {upgraded_from or 'empty'} -> {revision}", markup=False)
    else:
        state = "up to date" if revision == head else f"behind {head}"
        stdout().print(f"{one_line(url)}: {revision or 'empty'} ({state})", markup=False)
