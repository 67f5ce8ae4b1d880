// The official TypeScript SDK's client on a tether endpoint whose connection needs a
// sign-in: connect (tether answers initialize itself), list the tools (only
// sign_in_<name>), call that tool (the sign-in opens through $BROWSER on tether's side),
// wait for notifications/tools/list_changed on the session's GET stream, list the tools
// again (the upstream's) and call one. Prints one JSON report on stdout; exits non-zero on
// the first failure, with the error on stderr.
//
//   node sign-in-client.mjs PLAN_JSON
//
// PLAN_JSON: {"url": "http://…/mcp", "echo": {"name": "echo", "arguments": {…}},
//             "wait_ms": 30000}
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const plan = JSON.parse(process.argv[2]);
const textOf = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("");

const client = new Client({ name: "tether-test-sign-in-client", version: "1.0.0" });
let changes = 0;
let changed;
const listChanged = new Promise((resolve) => (changed = resolve));
client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
  changes += 1;
  changed();
});
const transport = new StreamableHTTPClientTransport(new URL(plan.url));
await client.connect(transport);

const report = {
  server: client.getServerVersion(),
  capabilities: client.getServerCapabilities(),
  session: transport.sessionId ?? null,
};
const before = await client.listTools();
report.before = before.tools;
const signIn = await client.callTool({ name: before.tools[0].name, arguments: {} });
report.sign_in = { text: textOf(signIn), error: signIn.isError ?? false };

let timer;
const waited = await Promise.race([
  listChanged.then(() => true),
  new Promise((resolve) => (timer = setTimeout(() => resolve(false), plan.wait_ms ?? 30_000))),
]);
clearTimeout(timer);
report.list_changed = waited;
report.changes = changes;
if (waited) {
  const after = await client.listTools();
  report.after = after.tools.map((t) => t.name);
  const echo = await client.callTool(plan.echo);
  report.echo = textOf(echo);
  report.echo_error = echo.isError ?? false;
}
await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
