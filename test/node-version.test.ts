import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { startServerProcess, type ServerProcess } from "./support/server-process.js";

// The project targets Node 24 (the current LTS) while the machines' own `node` may be older:
// the `node` devDependency puts a Node 24 binary in node_modules/.bin for npm scripts.

async function healthzNode(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.url}/healthz`);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { status: string; node: string };
  expect(body.status).toBe("ok");
  return body.node;
}

describe("Node 24", () => {
  it("runs the tests themselves on Node 24", () => {
    expect(Number(process.versions.node.split(".")[0]), `tests run on ${process.execPath}`).toBe(24);
  });

  it("runs a server process started with the npm start command on Node 24, as /healthz reports", async () => {
    const server = await startServerProcess({ database: { databaseUrl: await createTestDatabase() } });
    expect(await healthzNode(server)).toMatch(/^v24\./);
    expect(server.logs.find((line) => line.msg === "jobwire serving gRPC, gRPC-Web and Connect")?.node).toMatch(/^v24\./);
    // How it stops is shutdown.test.ts's concern; here it only has to go.
    await server.stop("SIGTERM");
  });

  it("runs `npm start` on Node 24 from a fresh shell's PATH, whatever the system node is", async () => {
    const server = await startServerProcess({ database: { databaseUrl: await createTestDatabase() }, launcher: "npm-start" });
    expect(await healthzNode(server)).toMatch(/^v24\./);
    // Ctrl-C in a terminal: SIGINT to npm and the server together.
    await server.stop("SIGINT");
  });
});
