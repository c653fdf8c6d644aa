"""Live events over HTTP: the server-sent-events stream of `GET /api/v1/events`, parsed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from client.results import json_object, required
from common.errors import Malformed


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: `seq` numbers the gateway's stream without gaps; `type` is head |
    reorg | txs_added | txs_removed | resync; `data` is the whole JSON object."""

    seq: int
    type: str
    data: dict[str, Any]


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """(id, data) of each event in a text/event-stream (W3C EventSource rules, minus
    `retry`); comments (heartbeats) are skipped."""
    data: list[str] = []
    event_id: str | None = None
    for line in lines:
        if line == "":
            if data:
                yield event_id, "\n".join(data)
            data, event_id = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


def event_from_json(data: str) -> Event:
    """One event's `data:` line, parsed."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Malformed("an event's data is not JSON") from None
    d = json_object(doc, "event")
    return Event(required(d, "seq", int), required(d, "type", str), d)
