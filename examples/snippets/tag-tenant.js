// An asynchronous step: drop deliveries for test users, tag the rest with
// the tenant from the step's config, and send it as a header too.
//
//   wasmhooks snippet run examples/snippets/tag-tenant.js \
//       --event examples/events/post-sign-in.json --config tenant=acme
export default function (event, ctx) {
  const { user, ...rest } = event.payload;
  if (user?.primaryEmail?.endsWith("@test.example")) return ctx.cancel(`test user ${user.primaryEmail}`);
  console.log("delivering", user?.id);
  ctx.setHeader("x-tenant", ctx.config.tenant);
  event.payload = { ...rest, user: { ...user, tenant: ctx.config.tenant } };
  return event;
}
