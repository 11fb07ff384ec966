"""The database checks of `check-alpaca`: reachable, and at the latest migration. Never raises: a
fault is a failed check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tradectl.db.models import HEAD_REVISION
from tradectl.errors import ConfigError, DatabaseError

State = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class DatabaseFacts:
    url: str  # password masked
    reachable: bool | None  # None: a SQLite file not created yet
    revision: str | None
    head: str = HEAD_REVISION
    error: str | None = None


def database_checks(url: str, secrets: tuple[str, ...]) -> tuple[list[Check], DatabaseFacts]:
    """Reachable, and at the latest migration. Never raises: a fault is a failed check. A SQLite
    file that does not exist yet is left uncreated."""
    from tradectl.db.session import Database
    from tradectl.db.url import masked_url, normalize_url

    shown, password = masked_url(url), None
    try:
        parsed = normalize_url(url)
        password, sqlite, path = parsed.password, parsed.get_backend_name() == "sqlite", \
            parsed.database or ""
        if sqlite and path and path != ":memory:" and not path.startswith("file:") \
                and not Path(path).exists():
            return [Check("database", "pass", f"{shown} not created yet: tradectl creates and "
                          "migrates it on first use")], DatabaseFacts(shown, None, None)
        db = Database(url)
        try:
            revision = db.schema_revision()
        finally:
            db.dispose()
    except (DatabaseError, ConfigError, ImportError, OSError, ValueError) as err:
        message = (err.message if isinstance(err, DatabaseError | ConfigError)
                   else f"database {shown}: {err}")
        message = message.strip().splitlines()[0]
        for secret in (*secrets, password):  # drivers may quote what they were given
            message = message.replace(str(secret), "***") if secret else message
        fix = getattr(err, "hint", None) or _database_fix(message.replace(shown, ""))
        return [Check("database", "fail", message, fix)], DatabaseFacts(shown, False, None,
                                                                       error=message)
    checks = [Check("database", "pass", f"{shown} reachable")]
    detail = f"at {revision or 'none (empty)'}, tradectl needs {HEAD_REVISION}"
    if revision == HEAD_REVISION:
        checks.append(Check("schema", "pass", f"at {revision} (latest)"))
    elif sqlite:
        checks.append(Check("schema", "warn", detail, "migrated by the next command that uses "
                            "it, or run `tradectl db upgrade`"))
    else:
        checks.append(Check("schema", "fail", detail, "run `tradectl db upgrade`"))
    return checks, DatabaseFacts(shown, True, revision)


def _database_fix(message: str) -> str:
    lowered = message.lower()
    if "no module named" in lowered:
        return "install the Postgres driver: pip install 'tradectl[postgres]'"
    if "password" in lowered or "authentication" in lowered or "role " in lowered:
        return "check the user and password in DATABASE_URL"
    return ("is the database server running, and are the host, port and database name in "
            "DATABASE_URL right?")
