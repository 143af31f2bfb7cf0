"""`enrich` in Python: adds the fields its hook config lists to every payload.

Each config key is a dotted path and its value the field's value, parsed as
JSON when it is valid JSON and kept as a string otherwise. In a synchronous
trigger it answers `allow` with a merge patch of those fields.
"""

import json

import wasmhooks_sdk as wh


def enrich(payload, fields):
    for path, raw in fields:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        payload = wh.set_path(payload, path, value)
    return payload


def handle(event: wh.Event) -> wh.RawOutcome:
    if event.is_sync():
        return wh.Outcome.allow(enrich({}, wh.config.all()))
    return wh.Outcome.payload(enrich(event.payload, wh.config.all()))


Handler = wh.hook(handle)
