// `enrich` in JavaScript: adds the fields its hook config lists to every
// payload. Each config key is a dotted path and its value the field's value,
// parsed as JSON when it is valid JSON and kept as a string otherwise. In a
// synchronous trigger it answers `allow` with a merge patch of those fields.

import { hook, Outcome, config, setPath } from './wasmhooks.js';

function enrich(payload, fields) {
  for (const [path, raw] of fields) {
    let value;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    payload = setPath(payload, path, value);
  }
  return payload;
}

export const handler = hook((event) => {
  if (event.isSync()) return Outcome.allow(enrich({}, config.all()));
  return Outcome.payload(enrich(event.payload, config.all()));
});
