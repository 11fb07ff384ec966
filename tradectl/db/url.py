"""DATABASE_URL: parsed, masked and checked without the ORM.

`open` checks the URL before its first broker read and imports the ORM while that read is in
flight, so this module imports SQLAlchemy's core only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tradectl.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def normalize_url(url: str) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver the postgres extra installs."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# Query parameters that hold no secret; any other value (password=, sslpassword=, ...) is masked.
_PLAIN_PARAMS = frozenset({
    "sslmode", "connect_timeout", "application_name", "target_session_attrs", "gssencmode",
    "keepalives", "client_encoding", "host", "hostaddr", "port", "dbname", "user", "mode",
    "uri", "cache", "timeout", "check_same_thread", "charset", "sslrootcert",
})
# `password=...` in a keyword DSN (host=... password=...): quoted or up to the next space
_KEYWORD_SECRET = re.compile(r"""(\b[a-z]*pass[a-z]*\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)""", re.I)
_MIN_SECRET = 3  # shorter passwords are not scrubbed from text (they would mangle it)


def masked_url(url: str) -> str:
    """DATABASE_URL as it may be shown, in every form: the password of `user:password@` (an
    unencoded `@` in it included), any query parameter but the plain ones (`?password=`), and
    a keyword DSN's `password=` are `***`. Worked on the text itself: a URL SQLAlchemy cannot
    parse is masked as well."""
    if "://" not in url:  # a keyword DSN, or something else that is not a URL
        return _KEYWORD_SECRET.sub(lambda m: m.group(1) + "***", url)
    head, question, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"  # as normalize_url reads it
    userinfo, at, hostpath = rest.rpartition("@")  # the last @: the password may hold one
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{hostpath}"
    if question:
        query = "&".join(f"{name}={value if name.lower() in _PLAIN_PARAMS else '***'}"
                         for name, value in parse_qsl(query, keep_blank_values=True))
    return f"{scheme}://{rest}" + (f"?{query}" if question else "")


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets a DATABASE_URL holds (each as written and percent-decoded): what masked_url
    hides, for scrubbing a driver's message that may quote them."""
    found: list[str] = []
    if "://" not in url:
        found += [m.group(2).strip("'") for m in _KEYWORD_SECRET.finditer(url)]
    else:
        head, _, query = url.partition("?")
        userinfo, at, _ = head.partition("://")[2].rpartition("@")
        if at and ":" in userinfo:
            password = userinfo.partition(":")[2]
            found += [password, *password.split("@")]  # a parser may cut it at an `@`
        found += [value for name, value in parse_qsl(query, keep_blank_values=True)
                  if name.lower() not in _PLAIN_PARAMS]
    found += [unquote(value) for value in found]
    return tuple(sorted({v for v in found if len(v) >= _MIN_SECRET}, key=len, reverse=True))


def scrubbed(text: str, url: str) -> str:
    """`text` (a driver's or SQLAlchemy's message) with the URL's secrets, and the URL itself,
    replaced by `***` / its masked form."""
    text = text.replace(url, masked_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


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
