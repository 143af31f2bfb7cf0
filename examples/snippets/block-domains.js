// A synchronous PreRegistration step: refuse sign-ups from the domains in
// `ctx.config.blocked` (comma-separated), and start everyone else on the
// free plan; the change comes back as the trigger's patch.
//
//   wasmhooks snippet run examples/snippets/block-domains.js --sync \
//       --event examples/events/pre-registration.json --config blocked=mailinator.com
export default function (event, ctx) {
  const domain = event.payload.email?.split("@")[1];
  const blocked = (ctx.config.blocked ?? "").split(",").map((d) => d.trim());
  if (blocked.includes(domain)) return ctx.deny("domain_blocked", `Sign-ups from ${domain} are closed.`);
  event.payload.customData = { ...event.payload.customData, plan: "free" };
  return event;
}
