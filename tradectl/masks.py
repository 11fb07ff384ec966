"""DATABASE_URL as it may be shown: its password masked in every form, and scrubbed from a
driver's message. Pure text work (no SQLAlchemy): settings and errors use it before any
database library is imported, and a URL no parser accepts is masked all the same."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

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
