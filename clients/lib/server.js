// The real server for the client tests: the built binary, started on a free
// port with its own SQLite database in a temporary directory, in demo mode.
// Each test file starts its own (node --test runs files in parallel).

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "./schema.js";

/** The binary under test: `LICENSE_GATEWAY_BIN` (tests/clients.rs sets it), else the debug build. */
export function serverBinary() {
  const bin = process.env.LICENSE_GATEWAY_BIN ??
    join(process.env.CARGO_TARGET_DIR ?? join(repoRoot, "target"), "debug", "license-gateway");
  if (!existsSync(bin)) {
    throw new Error(
      `no server binary at ${bin}: run \`cargo build\` first, or set LICENSE_GATEWAY_BIN ` +
        "(`cargo test --test clients` does both)",
    );
  }
  return bin;
}

/**
 * Starts the server with `--demo` (5 Case and 3 Document licenses, two of
 * each in use, six people of whom two have no login) and `extraArgs`.
 * Resolves to `{ url, graphqlUrl, wsUrl, operator, admin, stop }`, where
 * `operator` and `admin` are `{ username, password }` as the server printed
 * them (once, on its first start). With `databaseUrl` (e.g. a PostgreSQL
 * database another server already started on) it uses that database, and
 * `credentials` stand for what only the first start printed.
 */
export async function startServer(extraArgs = [], { databaseUrl, credentials } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "license-gateway-clients-"));
  const database = databaseUrl ?? `sqlite:${join(dir, "gateway.db")}`;
  const args = ["--database-url", database, "--listen", "127.0.0.1:0", "--demo", ...extraArgs];
  const child = spawn(serverBinary(), args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  // A test run that dies must not leave the server behind.
  process.once("exit", () => child.kill("SIGKILL"));

  const found = { ...credentials };
  const lines = createInterface({ input: child.stdout });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not say where it listens within 30 s")), 30_000);
      child.once("exit", (code, signal) => reject(new Error(`the server exited (${code ?? signal}) before listening`)));
      lines.on("line", (line) => {
        let m;
        if ((m = line.match(/Sign in with username `([^`]+)` and password `([^`]+)`/))) {
          found.operator = { username: m[1], password: m[2] };
        } else if ((m = line.match(/signIn\(username: "([^"]+)", password: "([^"]+)"\)/))) {
          found.admin = { username: m[1], password: m[2] };
        } else if ((m = line.match(/^license-gateway listening on (http:\/\/\S+?)\/? /))) {
          found.url = m[1];
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\nserver stderr:\n${stderr}`);
  }
  if (!found.operator || !found.admin) {
    await stop();
    throw new Error(
      `the server did not print the operator's and the demo administrator's passwords (got ${Object.keys(found)})`,
    );
  }
  return { ...found, graphqlUrl: `${found.url}/graphql`, wsUrl: `${found.url.replace(/^http/, "ws")}/graphql`, stop };
}
