// Types of the wasmhooks plugin SDK for JavaScript (wasmhooks.js).

/** A parsed JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What the host receives; build one with `Outcome`. */
export type RawOutcome =
  | { tag: 'continue'; val: { payload?: string; headers: { name: string; value: string }[] } }
  | { tag: 'cancel'; val: string }
  | { tag: 'deny'; val: { code: string; message: string } }
  | { tag: 'allow'; val?: { tag: 'merge' | 'json'; val: string } };

/** One event, as a hook sees it, with its payload parsed. */
export declare class Event {
  /** Stable id of the event (also the delivery's message id). */
  readonly id: string;
  /** Event name, for example `PostSignIn`. */
  readonly name: string;
  /** When it happened, RFC 3339 in UTC. */
  readonly createdAt: string;
  /** The hook whose pipeline runs this plugin. */
  readonly hookId: string;
  /** The synchronous trigger being answered, or null for a delivery. */
  readonly trigger: string | null;
  /** The payload, parsed. */
  payload: Json;
  /** Whether a synchronous trigger is waiting for an allow or a deny. */
  isSync(): boolean;
}

/** Fails this call with its message. */
export declare class HookError extends Error {}

/** What a plugin decides. */
export declare const Outcome: {
  /** Deliveries: go on with `value` as the payload (and extra headers). */
  payload(value: Json, headers?: Record<string, string>): RawOutcome;
  /** Deliveries: go on with the payload as it is. */
  unchanged(): RawOutcome;
  /** Deliveries: drop this delivery; the reason is recorded. */
  cancel(reason: string): RawOutcome;
  /** Sync triggers: refuse, with a stable code and a message for the user. */
  deny(code: string, message: string): RawOutcome;
  /** Sync triggers: let the flow go on, optionally with an RFC 7396 merge patch. */
  allow(merge?: Json): RawOutcome;
  /** Sync triggers: let the flow go on with an RFC 6902 JSON Patch. */
  allowJsonPatch(operations: Json[]): RawOutcome;
};

/** Configuration values the hook grants this plugin. */
export declare const config: {
  get(key: string): string | null;
  require(key: string): string;
  all(): [string, string][];
  list(key: string): string[];
};

/** Secrets the hook grants this plugin. */
export declare const secrets: {
  get(key: string): string | null;
};

/** Log lines, captured with the call. */
export declare const log: {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** An HTTP response: status, headers (lower-case names) and body. */
export declare class Response {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  /** The first value of header `name`, or null. */
  header(name: string): string | null;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json(): Json;
}

/** Outbound HTTP, to the hosts the hook grants. Throws a HookError when the request cannot be made. */
export declare const http: {
  request(
    method: string,
    url: string,
    headers?: Record<string, string>,
    body?: string | Uint8Array,
  ): Response;
  get(url: string, headers?: Record<string, string>): Response;
  postJson(url: string, body: Json, headers?: Record<string, string>): Response;
};

/** The value at a dotted `path` (`user.primaryEmail`), or undefined. */
export declare function getPath(value: Json, path: string): Json | undefined;

/** Set the value at a dotted `path`, creating objects on the way; returns `value`. */
export declare function setPath(value: Json, path: string, next: Json): Json;

/** The handler componentize-js exports: `export const handler = hook(fn)`. */
export declare function hook(handle: (event: Event) => RawOutcome): {
  handle(raw: unknown): RawOutcome;
};
