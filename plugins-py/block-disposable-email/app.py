"""`block-disposable-email` in Python: a synchronous hook that denies
registration with a disposable email address.

It reads the address from `email`, `user.primaryEmail` or `primaryEmail` in
the payload. Config `domains` adds comma-separated domains to the built-in
list; `message` replaces the message shown to the user. Bound to an
asynchronous hook, it cancels the delivery instead.
"""

import wasmhooks_sdk as wh

DISPOSABLE_DOMAINS = {
    "10minutemail.com", "discard.email", "dispostable.com", "fakeinbox.com", "getnada.com",
    "guerrillamail.com", "guerrillamail.net", "maildrop.cc", "mailinator.com", "mailnesia.com",
    "mintemail.com", "mohmal.com", "sharklasers.com", "temp-mail.org", "tempmail.com",
    "tempmailo.com", "throwawaymail.com", "trashmail.com", "yopmail.com",
}


def domain(email):
    """The domain of `email` in lower case, if it has one."""
    if "@" not in email:
        return None
    d = email.rsplit("@", 1)[1].strip().rstrip(".").lower()
    return d or None


def is_disposable(d, extra):
    """True when `d` or any parent domain of it (with a dot) is listed."""
    while True:
        if d in DISPOSABLE_DOMAINS or d in extra:
            return True
        parts = d.split(".", 1)
        if len(parts) == 2 and "." in parts[1]:
            d = parts[1]
        else:
            return False


def handle(event: wh.Event) -> wh.RawOutcome:
    email = None
    for path in ("email", "user.primaryEmail", "primaryEmail"):
        found = wh.get_path(event.payload, path)
        if isinstance(found, str):
            email = found
            break
    extra = {d.lower() for d in wh.config.list("domains")}
    d = domain(email) if email is not None else None
    disposable = d is not None and is_disposable(d, extra)
    if not disposable:
        return wh.Outcome.allow() if event.is_sync() else wh.Outcome.unchanged()
    if event.is_sync():
        message = wh.config.get("message") or "Please sign up with a permanent email address."
        return wh.Outcome.deny("disposable_email", message)
    return wh.Outcome.cancel("disposable email address")


Handler = wh.hook(handle)
