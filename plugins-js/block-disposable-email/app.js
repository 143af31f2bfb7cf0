// `block-disposable-email` in JavaScript: a synchronous hook that denies
// registration with a disposable email address. It reads the address from
// `email`, `user.primaryEmail` or `primaryEmail`. Config `domains` adds
// comma-separated domains to the built-in list; `message` replaces the
// message shown to the user. Bound to an asynchronous hook, it cancels the
// delivery instead.

import { hook, Outcome, config, getPath } from './wasmhooks.js';

const DISPOSABLE_DOMAINS = new Set([
  '10minutemail.com', 'discard.email', 'dispostable.com', 'fakeinbox.com', 'getnada.com',
  'guerrillamail.com', 'guerrillamail.net', 'maildrop.cc', 'mailinator.com', 'mailnesia.com',
  'mintemail.com', 'mohmal.com', 'sharklasers.com', 'temp-mail.org', 'tempmail.com',
  'tempmailo.com', 'throwawaymail.com', 'trashmail.com', 'yopmail.com',
]);

/** The domain of `email` in lower case, if it has one. */
function domain(email) {
  const at = email.lastIndexOf('@');
  if (at < 0) return null;
  const d = email.slice(at + 1).trim().replace(/\.+$/, '').toLowerCase();
  return d === '' ? null : d;
}

/** True when `d` or any parent domain of it (with a dot) is listed. */
function isDisposable(d, extra) {
  for (;;) {
    if (DISPOSABLE_DOMAINS.has(d) || extra.has(d)) return true;
    const dot = d.indexOf('.');
    const parent = dot < 0 ? '' : d.slice(dot + 1);
    if (!parent.includes('.')) return false;
    d = parent;
  }
}

export const handler = hook((event) => {
  const email = ['email', 'user.primaryEmail', 'primaryEmail']
    .map((p) => getPath(event.payload, p))
    .find((v) => typeof v === 'string');
  const extra = new Set(config.list('domains').map((d) => d.toLowerCase()));
  const d = email === undefined ? null : domain(email);
  const disposable = d !== null && isDisposable(d, extra);
  if (!disposable) return event.isSync() ? Outcome.allow() : Outcome.unchanged();
  if (event.isSync()) {
    const message = config.get('message') ?? 'Please sign up with a permanent email address.';
    return Outcome.deny('disposable_email', message);
  }
  return Outcome.cancel('disposable email address');
});
