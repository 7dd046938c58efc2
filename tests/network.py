"""The network, refused at the transports: any HTTP call leaving this machine fails at once, naming its URL.

Three patch points catch every client the Azure SDKs use: requests' HTTPAdapter.send (requests itself,
msal, msrest, azureml-core and azure-core's RequestsTransport), urllib3's connection pool (its direct
users), and socket.connect (anything else). The error is deliberately not a requests, urllib3, OSError or
AzureError subclass, so no SDK wraps it into a retried transient error. Loopback stays open for Azurite.
Tests read `refused` to assert which call was the first to reach the wire — SDKs swallow some errors.
"""
from __future__ import annotations

import io
import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests.adapters
import urllib3.connectionpool


class NetworkRefused(RuntimeError):
    """An HTTP call that would have left this machine."""


def is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    body: bytes
    headers: dict[str, str]  # which tokens (Authorization, ...) the request carried

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")


@dataclass
class Wire:
    """What reached the wire: every refused call in order, and the calls a test chose to answer."""
    refused: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    answers: list[tuple[str, re.Pattern, int, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)  # every request that reached the wire, with its body

    def bodies(self, method: str, url_pattern: str) -> list[bytes]:
        """The bodies of the requests sent with that method to URLs matching the pattern, in order."""
        return [s.body for s in self.sent if s.method == method and re.search(url_pattern, s.url)]

    def answer(self, method: str, url_pattern: str, status: int, body: Any = None) -> None:
        """Answers matching requests with `status` and `body`, as a service would: a dict or list is sent
        as JSON, str as XML (storage listings), bytes as a blob; None sends an empty body; a function of
        the request gives one of those, or (status, body) or (status, body, headers) (a service that
        keeps what it is sent).
        The answer given last wins where several match."""
        self.answers.append((method, re.compile(url_pattern), status, body))

    def refuse(self, what: str) -> None:
        self.refused.append(what)
        raise NetworkRefused(f"network refused in tests: {what}")

    def respond(self, request) -> requests.Response | None:
        for method, pattern, status, answer in reversed(self.answers):
            if request.method == method and pattern.search(request.url):
                self.answered.append(f"{request.method} {request.url}")
                body = answer(request) if callable(answer) else answer
                extra: dict[str, str] = {}
                if isinstance(body, tuple):  # (status, body) or (status, body, headers)
                    status, body, *more = body
                    extra = more[0] if more else {}
                content, kind = (
                    (b"", None) if body is None else (body, "application/octet-stream")
                    if isinstance(body, bytes) else (body.encode(), "application/xml")
                    if isinstance(body, str) else (json.dumps(body).encode(), "application/json"))
                headers = {"Content-Length": str(len(content)), "ETag": '"0x1"',
                           "Last-Modified": "Sat, 28 Nov 2026 10:00:00 GMT"}
                if kind:
                    headers["Content-Type"] = kind
                if isinstance(body, bytes) and content:
                    headers.update({"x-ms-blob-type": "BlockBlob",
                                    "Content-Range": f"bytes 0-{len(content) - 1}/{len(content)}"})
                headers.update(extra)
                response = requests.Response()
                response.status_code, response.url, response.request = status, request.url, request
                response.headers.update(headers)
                response.raw = urllib3.HTTPResponse(body=io.BytesIO(content), headers=headers, status=status,
                                                    preload_content=False)
                return response
        return None


def body_bytes(body: Any) -> bytes:
    """A prepared request's body as bytes: requests sends bytes, str or nothing (a stream would be read
    by the transport itself, and none of the SDKs' small uploads here sends one)."""
    if body is None or isinstance(body, bytes):
        return body or b""
    if isinstance(body, str):
        return body.encode()
    raise TypeError(f"a streamed request body ({type(body).__name__}) cannot be recorded")


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    """Refuses the network for one test; yields the record of refused calls."""
    record = Wire()
    send, urlopen, connect = (requests.adapters.HTTPAdapter.send,
                              urllib3.connectionpool.HTTPConnectionPool.urlopen, socket.socket.connect)

    def guarded_send(self, request, *args, **kwargs):
        if not is_loopback(urlsplit(request.url).hostname):
            record.sent.append(Sent(request.method, request.url, body_bytes(request.body),
                                    dict(request.headers)))
            response = record.respond(request)
            if response is not None:
                return response
            record.refuse(f"{request.method} {request.url}")
        return send(self, request, *args, **kwargs)

    def guarded_urlopen(self, method, url, *args, **kwargs):
        if not is_loopback(self.host):
            record.refuse(f"{method} {self.scheme}://{self.host}{url}")
        return urlopen(self, method, url, *args, **kwargs)

    def guarded_connect(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(str(address[0])):
            record.refuse(f"connect {address[0]}:{address[1]}")
        return connect(self, address, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", guarded_send)
    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", guarded_urlopen)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    for variable in ("ARM_CLOUD_METADATA_URL", "AZUREML_CURRENT_CLOUD"):  # would fetch cloud metadata
        monkeypatch.delenv(variable, raising=False)
    yield record
