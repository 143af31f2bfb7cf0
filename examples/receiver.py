#!/usr/bin/env python3
"""A webhook receiver that verifies wasmhooks' signatures and prints each delivery.

    python3 examples/receiver.py 9000 <signing_key> <whsec_secret>

Both signatures are checked the way any Logto or Standard Webhooks receiver checks them:
- logto-signature-sha-256: hex HMAC-SHA256 of the raw body, keyed with the signing key's UTF-8 bytes;
- webhook-signature: base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}", keyed with the
  base64-decoded part of the whsec_ secret after the prefix; any `v1,` entry may match.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SIGNING_KEY, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def logto_ok(headers, body):
    expected = hmac.new(SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("logto-signature-sha-256", ""))


def standard_ok(headers, body):
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
    if abs(time.time() - int(ts)) > 300:
        return False  # too old or from the future: a replay
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    entries = headers.get("webhook-signature", "").split(" ")
    return any(hmac.compare_digest(expected, e.removeprefix("v1,")) for e in entries if e.startswith("v1,"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        verified = logto_ok(self.headers, body) and standard_ok(self.headers, body)
        print(f"{self.headers['webhook-id']} signatures {'valid' if verified else 'INVALID'}")
        print(json.dumps(json.loads(body), indent=2), flush=True)
        self.send_response(200 if verified else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
