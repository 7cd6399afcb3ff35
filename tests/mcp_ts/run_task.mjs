// A second, independent MCP client: the TypeScript SDK (the one Claude Code, Cursor and VS Code build on).
// Lists the tools, creates a session and runs one task with progress; prints one JSON line.
// Usage: NODE_PATH=<node_modules holding the SDK> node run_task.mjs URL TOKEN
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.NODE_PATH, "index.js"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `token ${token}` } },
});
const client = new Client({ name: "ts-sdk-test", version: "1.0.0" });
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const created = await client.callTool({ name: "create_session", arguments: { name: "from node" } });
const sessionId = created.structuredContent.id;
const progress = [];
const task = await client.callTool(
  { name: "run_task", arguments: { session_id: sessionId, message: "compute x" } },
  undefined,
  { onprogress: (p) => progress.push([p.progress, p.message]), timeout: 300000, resetTimeoutOnProgress: true },
);
console.log(JSON.stringify({ tools, sessionId, task: task.structuredContent, text: task.content[0].text, progress }));
await client.close();
