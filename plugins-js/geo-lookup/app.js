// `geo-lookup` in JavaScript: asks an HTTP API where the user's IP address
// is and adds the answer to the payload. Config `url` (with `{ip}` for the
// address; its host must be granted), `field` (default `geo`) and `ip-path`
// (default `userIp`). A granted secret `api-key` is sent as a bearer token.
// Events without an address pass unchanged.

import { hook, Outcome, config, secrets, log, http, getPath, setPath, HookError } from './wasmhooks.js';

export const handler = hook((event) => {
  const url = config.require('url');
  const ipPath = config.get('ip-path') ?? 'userIp';
  const field = config.get('field') ?? 'geo';
  const ip = getPath(event.payload, ipPath);
  if (typeof ip !== 'string') {
    log.info(`no address at \`${ipPath}\`; payload unchanged`);
    return Outcome.unchanged();
  }
  const key = secrets.get('api-key');
  const headers = key === null ? {} : { authorization: `Bearer ${key}` };
  const response = http.get(url.replace('{ip}', ip), headers);
  if (response.status < 200 || response.status > 299) {
    throw new HookError(`geo API answered ${response.status}`);
  }
  const answer = response.json();
  log.info(`looked up ${ip}`);
  return Outcome.payload(setPath(event.payload, field, answer));
});
