"""`geo-lookup` in Python: asks an HTTP API where the user's IP address is and
adds the answer to the payload. Config `url` (with `{ip}` for the address;
its host must be granted), `field` (default `geo`) and `ip-path` (default
`userIp`). A granted secret `api-key` is sent as a bearer token. Events
without an address pass unchanged.
"""

import wasmhooks_sdk as wh


def handle(event: wh.Event) -> wh.RawOutcome:
    url = wh.config.require("url")
    ip_path = wh.config.get("ip-path") or "userIp"
    field = wh.config.get("field") or "geo"
    ip = wh.get_path(event.payload, ip_path)
    if not isinstance(ip, str):
        wh.log.info(f"no address at `{ip_path}`; payload unchanged")
        return wh.Outcome.unchanged()
    key = wh.secrets.get("api-key")
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    response = wh.http.get(url.replace("{ip}", ip), headers)
    if not 200 <= response.status <= 299:
        raise wh.Error(f"geo API answered {response.status}")
    answer = response.json()
    wh.log.info(f"looked up {ip}")
    return wh.Outcome.payload(wh.set_path(event.payload, field, answer))


Handler = wh.hook(handle)
