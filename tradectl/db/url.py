"""DATABASE_URL: parsed, masked and checked without the ORM.

`open` checks the URL before its first broker read and imports the ORM while that read is in
flight, so this module imports SQLAlchemy's core only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tradectl.errors import ConfigError
from tradectl.masks import masked_url, scrubbed, url_secrets

__all__ = ["durable_url", "masked_url", "normalize_url", "scrubbed", "unusable_url",
           "url_secrets", "usable_url"]

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def normalize_url(url: str) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver the postgres extra installs."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def usable_url(url: str) -> URL:
    """The parsed URL once its dialect and driver load; ConfigError (exit 2) naming what is wrong.

    Nothing is connected to: an unreachable server is a database fault, found when it is used.
    """
    try:
        parsed = normalize_url(url)
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise unusable_url(url, err) from None
    except ImportError as err:
        raise ConfigError(f"DATABASE_URL needs a driver that is not installed ({err.name}): "
                          "for PostgreSQL, pip install 'tradectl[postgres]'") from None
    return parsed


def durable_url(url: str) -> URL:
    """A usable URL that keeps what is written: an in-memory SQLite database would lose the
    record of every order the moment the command ends."""
    parsed = usable_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and (
            not database or ":memory:" in database or parsed.query.get("mode") == "memory"):
        raise ConfigError(f"DATABASE_URL {masked_url(url)} is an in-memory database: the record "
                          "of orders would vanish with the command; use a file "
                          "(sqlite:///path/to/tradectl.db) or PostgreSQL")
    return parsed


def unusable_url(url: str, err: Exception) -> ConfigError:
    reason = scrubbed(str(err).splitlines()[0], url) if str(err) else type(err).__name__
    return ConfigError(f"DATABASE_URL is not a usable database URL ({masked_url(url)}): {reason}")
