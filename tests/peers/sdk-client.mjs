// A real MCP client, the official TypeScript SDK's, driven the way an MCP host drives a
// server: connect (initialize), list tools, call a plain tool and a streaming tool (progress
// notifications over SSE), for several rounds with a pause between them, then close.
// Prints one JSON report on stdout; exits non-zero on the first failure, with the error on
// stderr.
//
//   node sdk-client.mjs PLAN_JSON
//
// PLAN_JSON: {
//   "url": "http://…/mcp"            (Streamable HTTP) or "command": ["tether", "stdio", …],
//   "echo": {"name": "echo", "arguments": {"text": "hi"}},
//   "stream": {"name": "progress", "arguments": {"steps": 3}},
//   "rounds": 3, "pause_ms": 1000
// }
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const plan = JSON.parse(process.argv[2]);

function transportFor(plan) {
  if (plan.url) {
    return new StreamableHTTPClientTransport(new URL(plan.url));
  }
  const [command, ...args] = plan.command;
  return new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const textOf = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("");

const client = new Client({ name: "tether-test-sdk-client", version: "1.0.0" });
const transport = transportFor(plan);
await client.connect(transport);
// Progress notifications as they arrive on the wire: the SDK hands notifications to their
// handlers a microtask late, after a response in the same read has already retired the
// call's progress handler, so its `onprogress` can miss the last one.
let wire = [];
const deliver = transport.onmessage;
transport.onmessage = (message, extra) => {
  if (message.method === "notifications/progress") wire.push(message.params.progress);
  deliver?.call(transport, message, extra);
};

const report = {
  server: client.getServerVersion(),
  protocol: transport.protocolVersion ?? null,
  rounds: [],
};
for (let round = 0; round < (plan.rounds ?? 1); round++) {
  if (round > 0) await sleep(plan.pause_ms ?? 0);
  const tools = await client.listTools();
  const echo = await client.callTool(plan.echo);
  const progress = [];
  wire = [];
  const stream = await client.callTool(plan.stream, undefined, {
    onprogress: (p) => progress.push(p.progress),
    timeout: 60_000,
  });
  report.rounds.push({
    tools: tools.tools.map((t) => t.name),
    echo: textOf(echo),
    echo_error: echo.isError ?? false,
    stream: textOf(stream),
    stream_error: stream.isError ?? false,
    progress: wire,
    progress_handled: progress,
  });
}
await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
