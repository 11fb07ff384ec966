"""vcrpy's stub for httpcore, which `tradectl.net` uses directly (vcrpy patches httpx and
http.client, not httpcore). Passed to vcrpy as a custom patch of `httpcore.ConnectionPool`:
vcrpy gives the subclass its `cassette`. A request in the cassette is answered from it; one that
is not is sent for real and recorded, or refused when the cassette may not be written. The
cassettes' format is vcrpy's own, the same as its httpx and requests stubs write."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpcore
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest


class VCRConnectionPool(httpcore.ConnectionPool):
    cassette: Any = None  # set by vcrpy on the subclass it patches in

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        body = b"".join(request.stream)  # type: ignore[arg-type]
        request.stream = [body]  # read once: handed on whole
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in request.headers}
        asked = VcrRequest(request.method.decode(), bytes(request.url).decode("latin-1"), body,
                           headers)
        if self.cassette.can_play_response_for(asked):
            return _played(self.cassette.play_response(asked))
        if self.cassette.write_protected and self.cassette.filter_request(asked):
            raise CannotOverwriteExistingCassetteException(cassette=self.cassette,
                                                           failed_request=asked)
        real = super().handle_request(request)
        try:
            content = real.read()
        finally:
            real.close()
        recorded: dict[str, list[str]] = defaultdict(list)
        for name, value in real.headers:
            recorded[name.decode("latin-1")].append(value.decode("latin-1"))
        reason = real.extensions.get("reason_phrase", b"").decode("latin-1")
        self.cassette.append(asked, {"status": {"code": real.status, "message": reason},
                                     "headers": dict(recorded), "body": {"string": content}})
        return httpcore.Response(real.status, headers=real.headers, content=content)


def _played(recorded: dict[str, Any]) -> httpcore.Response:
    headers = [(name, value) for name, values in recorded["headers"].items()
               for value in values]
    content = recorded["body"]["string"]
    return httpcore.Response(recorded["status"]["code"], headers=headers,
                             content=content.encode() if isinstance(content, str) else content)
