// The wasmhooks plugin SDK for JavaScript, built with componentize-js.
//
// The same shape as the Rust SDK: an Event with its payload parsed, Outcome
// helpers, config, secrets, log, outbound http, and hook() to export a
// function as the plugin's handler:
//
//     import { hook, Outcome, config } from './wasmhooks.js';
//     export const handler = hook((event) => {
//       event.payload.tenant = config.get('tenant');
//       return Outcome.payload(event.payload);
//     });
//
// Types are in wasmhooks.d.ts. `wasmhooks plugin new NAME --lang js` writes
// a project with this file beside its source and a build script.

import * as hostConfig from 'wasmhooks:hook/config@0.1.0';
import * as hostSecrets from 'wasmhooks:hook/secrets@0.1.0';
import { write } from 'wasmhooks:hook/log@0.1.0';
import { handle as sendRequest } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';

/** One event, as a hook sees it, with its payload parsed. */
export class Event {
  constructor(raw) {
    this.id = raw.id;
    this.name = raw.name;
    this.createdAt = raw.createdAt;
    this.hookId = raw.hookId;
    this.trigger = raw.trigger ?? null;
    this.payload = JSON.parse(raw.payload);
  }

  /** Whether a synchronous trigger is waiting for an allow or a deny. */
  isSync() {
    return this.trigger !== null;
  }
}

/** Fails this call with its message. */
export class HookError extends Error {}

/** What a plugin decides. */
export const Outcome = {
  /** Deliveries: go on with `value` as the payload (and extra headers). */
  payload(value, headers = {}) {
    const extra = Object.entries(headers).map(([name, v]) => ({ name, value: String(v) }));
    return { tag: 'continue', val: { payload: JSON.stringify(value), headers: extra } };
  },
  /** Deliveries: go on with the payload as it is. */
  unchanged() {
    return { tag: 'continue', val: { payload: undefined, headers: [] } };
  },
  /** Deliveries: drop this delivery; the reason is recorded. */
  cancel(reason) {
    return { tag: 'cancel', val: reason };
  },
  /** Sync triggers: refuse, with a stable code and a message for the user. */
  deny(code, message) {
    return { tag: 'deny', val: { code, message } };
  },
  /** Sync triggers: let the flow go on, optionally with an RFC 7396 merge patch. */
  allow(merge) {
    if (merge === undefined || merge === null) return { tag: 'allow', val: undefined };
    return { tag: 'allow', val: { tag: 'merge', val: JSON.stringify(merge) } };
  },
  /** Sync triggers: let the flow go on with an RFC 6902 JSON Patch. */
  allowJsonPatch(operations) {
    return { tag: 'allow', val: { tag: 'json', val: JSON.stringify(operations) } };
  },
};

/** Configuration values the hook grants this plugin. */
export const config = {
  /** The value of `key`, or null. */
  get(key) {
    return hostConfig.get(key) ?? null;
  },
  /** The value of `key`; fails the call when it is not set. */
  require(key) {
    const value = hostConfig.get(key);
    if (value === undefined) throw new HookError(`config value \`${key}\` is not set`);
    return value;
  },
  /** Every [key, value], sorted by key. */
  all() {
    return hostConfig.getAll();
  },
  /** A comma-separated value as its trimmed, non-empty items. */
  list(key) {
    return (hostConfig.get(key) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  },
};

/** Secrets the hook grants this plugin. */
export const secrets = {
  /** The secret `key`, or null. */
  get(key) {
    return hostSecrets.get(key) ?? null;
  },
};

/** Log lines, captured with the call. */
export const log = {
  trace: (message) => write('trace', String(message)),
  debug: (message) => write('debug', String(message)),
  info: (message) => write('info', String(message)),
  warn: (message) => write('warn', String(message)),
  error: (message) => write('error', String(message)),
};

/** An HTTP response: status, headers (lower-case names) and body. */
export class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  /** The first value of header `name`, or null. */
  header(name) {
    const found = this.headers.find(([k]) => k === name.toLowerCase());
    return found ? found[1] : null;
  }
  /** The body as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.body);
  }
  /** The body parsed as JSON. */
  json() {
    return JSON.parse(this.text());
  }
}

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

function failure(what, e) {
  const detail = e && e.payload !== undefined ? JSON.stringify(e.payload) : String(e);
  return new HookError(`${what}: ${detail}`);
}

/** Outbound HTTP, to the hosts the hook grants (over `wasi:http`). */
export const http = {
  /** Send a request and wait for the whole response. */
  request(method, url, headers = {}, body = undefined) {
    const parsed = /^(https?):\/\/([^/?#]+)([^#]*)/.exec(url);
    if (!parsed) throw new HookError(`\`${url}\` is not an http(s) URL`);
    const [, scheme, authority, rest] = parsed;
    const encoder = new TextEncoder();
    const fields = Fields.fromList(
      Object.entries(headers).map(([k, v]) => [k.toLowerCase(), encoder.encode(String(v))]),
    );
    const request = new OutgoingRequest(fields);
    const lower = method.toLowerCase();
    request.setMethod(METHODS.includes(lower) ? { tag: lower } : { tag: 'other', val: method });
    request.setScheme({ tag: scheme.toUpperCase() });
    request.setAuthority(authority);
    request.setPathWithQuery(rest === '' ? '/' : rest);
    const outgoing = request.body();
    let future;
    try {
      future = sendRequest(request, undefined);
    } catch (e) {
      throw failure(`${method} ${url}`, e);
    }
    const data = typeof body === 'string' ? encoder.encode(body) : body ?? new Uint8Array();
    const stream = outgoing.write();
    for (let start = 0; start < data.length; start += 4096) {
      stream.blockingWriteAndFlush(data.subarray(start, start + 4096));
    }
    stream[Symbol.dispose]();
    OutgoingBody.finish(outgoing, undefined);
    future.subscribe().block();
    const answer = future.get();
    if (answer === undefined || answer.tag === 'err') throw new HookError(`${method} ${url}: no response`);
    if (answer.val.tag === 'err') throw failure(`${method} ${url}`, { payload: answer.val.val });
    const response = answer.val.val;
    const decoder = new TextDecoder();
    const got = response.headers().entries().map(([k, v]) => [k, decoder.decode(v)]);
    const incoming = response.consume();
    const input = incoming.stream();
    const chunks = [];
    for (;;) {
      try {
        chunks.push(input.blockingRead(65536n));
      } catch (e) {
        if (e && e.payload && e.payload.tag === 'closed') break;
        throw failure(`${method} ${url}: reading the body`, e);
      }
    }
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new Response(response.status(), got, all);
  },
  /** `GET url`. */
  get(url, headers = {}) {
    return http.request('GET', url, headers);
  },
  /** `POST url` with a JSON body. */
  postJson(url, body, headers = {}) {
    return http.request('POST', url, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
  },
};

/** The value at a dotted `path` (`user.primaryEmail`), or undefined. */
export function getPath(value, path) {
  for (const key of path.split('.')) {
    if (value !== null && typeof value === 'object') value = value[key];
    else return undefined;
  }
  return value;
}

/** Set the value at a dotted `path`, creating objects on the way; returns `value`. */
export function setPath(value, path, next) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) value = {};
  const keys = path.split('.');
  let current = value;
  for (const key of keys.slice(0, -1)) {
    const child = current[key];
    if (child === null || typeof child !== 'object' || Array.isArray(child)) current[key] = {};
    current = current[key];
  }
  current[keys[keys.length - 1]] = next;
  return value;
}

/** The handler componentize-js exports: `export const handler = hook(fn)`. */
export function hook(handle) {
  return {
    handle(raw) {
      try {
        return handle(new Event(raw));
      } catch (e) {
        throw (e && e.message) || String(e);
      }
    },
  };
}
