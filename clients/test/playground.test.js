// The playground as an administrator uses it, in a real headless Chromium
// (Debian's, driven by playwright-core) that can reach nothing but loopback,
// against the built server: sign in through the form, run the pools tab,
// build a query in the explorer, watch a pool change over a subscription,
// sign out. One browser for the whole path; the steps run in order and
// share the page. Throughout: no request leaves the server, the page's
// Content-Security-Policy blocks nothing it needs, and neither the password
// nor the token is written to localStorage.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startServer } from "../lib/server.js";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
// CI installs Chromium (.ci/run) and must run this; elsewhere it is skipped, and tests/clients.rs says so.
const skip = !existsSync(executablePath) && !process.env.CI && `no Chromium at ${executablePath} (apt-get install chromium)`;

let server;
let browser;
let page;
let subscriptions; // whether the schema has Subscription.licensePools
const requests = []; // every URL the page asked for
const problems = []; // console errors, CSP reports, uncaught exceptions
const sockets = []; // every WebSocket the page opened, with the frames it sent
// The probes of the CSP test fail on purpose; what they log is not a problem.
const PROBE = "csp-probe";

/** POSTs one operation to the server as `token`; resolves to the answer's JSON. */
async function api(query, variables = {}, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(server.graphqlUrl, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return response.json();
}

async function signInByApi({ username, password }) {
  const answer = await api(
    "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }",
    { u: username, p: password },
  );
  return answer.data.signIn.token;
}

/** The text of one of GraphiQL's editors (CodeMirror 5 renders only the visible lines, so not innerText). */
const editorText = (selector) =>
  page.evaluate((s) => document.querySelector(`${s} .CodeMirror`).CodeMirror.getValue(), selector);
const setQuery = (text) =>
  page.evaluate((t) => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(t), text);
const result = () => editorText(".result-window");

/** Waits until the result pane holds JSON for which `check` is true; returns it. */
async function resultWhere(check, what) {
  let last = "";
  for (const start = Date.now(); Date.now() - start < 20_000; await new Promise((r) => setTimeout(r, 100))) {
    last = await result();
    try {
      const json = JSON.parse(last);
      if (check(json)) return json;
    } catch {
      // not (yet) JSON: GraphiQL is still running the operation
    }
  }
  assert.fail(`the result pane never showed ${what}; it shows:\n${last}`);
}

const storageText = (name) => page.evaluate((n) => JSON.stringify(Object.entries(window[n])), name);
const sessionToken = () =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem("license-gateway:session") || "null")?.token ?? null);
const messageText = () => page.locator("#session-message").innerText();

before(async () => {
  if (skip) return;
  // One failed attempt per username is enough to show the throttle in the form.
  server = await startServer(["--sign-in-max-failures", "1"]);
  const schema = await api("{ __schema { subscriptionType { fields { name } } } }");
  subscriptions = (schema.data.__schema.subscriptionType?.fields ?? []).some((f) => f.name === "licensePools");
  browser = await chromium.launch({
    executablePath,
    // Nothing but loopback resolves: a CDN dependency would fail to load.
    args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--disable-background-networking"],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  page.on("request", (request) => requests.push(request.url()));
  page.on("websocket", (socket) => {
    const seen = { url: socket.url(), sent: [], socket };
    socket.on("framesent", (frame) => seen.sent.push(String(frame.payload)));
    sockets.push(seen);
  });
  page.on("console", (message) => {
    const text = message.text();
    if ((message.type() === "error" || text.includes("Content Security Policy")) && !text.includes(PROBE)) {
      problems.push(`console: ${text.slice(0, 300)}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`exception: ${error.message}`));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("before sign-in the page offers the form, and shows a refusal or a throttle in it", { skip }, async () => {
  await page.goto(`${server.url}/`);
  await page.locator(".graphiql-container .graphiql-execute-button").waitFor();
  assert.match(await editorText(".graphiql-query-editor"), /Sign in with the form above/);
  assert.equal(await page.getByRole("button", { name: "Sign out" }).isVisible(), false);

  for (const expected of [/Unknown username or wrong password/, /Too many failed sign-ins.*Try again in \d+ s/]) {
    await page.getByLabel("Username").fill("nobody");
    await page.getByLabel("Password").fill("not the password at all");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#session-message", { hasText: expected }).waitFor();
    assert.equal(await page.getByLabel("Password").inputValue(), "", "the password is typed again for each attempt");
  }
  assert.equal(await sessionToken(), null);
});

test("an administrator signs in through the form and the pools tab runs", { skip }, async () => {
  await page.getByLabel("Username").fill(server.admin.username);
  await page.getByLabel("Password").fill(server.admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#signed-in", { hasText: `Signed in as ${server.admin.username} (site administrator)` }).waitFor();
  assert.equal(await page.locator("#sign-in").isVisible(), false);
  assert.equal(await messageText(), "");

  // The tab that opened is the pools query, ready to run, with the subscription to copy.
  await page.locator(".graphiql-tab-active", { hasText: "Pools" }).waitFor();
  const query = await editorText(".graphiql-query-editor");
  assert.match(query, /^query Pools \{/m);
  assert.match(query, /#\s+subscription LivePools \{/);
  await page.locator(".graphiql-execute-button").click();
  const answer = await resultWhere((json) => json.data?.viewer?.site, "the site with its pools");
  assert.equal(answer.data.viewer.site.name, "Demo site");
  const pools = Object.fromEntries(answer.data.viewer.site.licensePools.map((p) => [p.module.code, p]));
  assert.deepEqual(
    [pools.CASE.total, pools.CASE.used, pools.CASE.available, pools.DOCUMENT.total, pools.DOCUMENT.available],
    [5, 2, 3, 3, 1],
  );
});

test("the token stays in this tab's sessionStorage, and no password or token reaches localStorage or an editor", { skip }, async () => {
  const token = await sessionToken();
  assert.ok(token, "the session is kept for the tab");
  assert.ok((await api("{ viewer { username } }", {}, token)).data, "the kept token is the live session's");
  // A reload of the tab keeps it signed in.
  await page.reload();
  await page.locator("#signed-in", { hasText: server.admin.username }).waitFor();
  await page.locator(".graphiql-container .graphiql-execute-button").waitFor();

  // GraphiQL's history records the run; give it time to write its state.
  await page.locator('.graphiql-sidebar button[aria-label="Show History"]').click();
  await page.locator(".graphiql-history", { hasText: "Pools" }).waitFor();
  await page.waitForTimeout(1500);
  const local = await storageText("localStorage");
  assert.match(local, /graphiql:/, "GraphiQL stored its state");
  for (const secret of [token, server.admin.password]) {
    assert.ok(!local.includes(secret), `a secret is in localStorage: ${local}`);
  }
  assert.ok(!(await storageText("sessionStorage")).includes(server.admin.password));
  for (const editor of [".graphiql-query-editor", ".graphiql-editor-tool"]) {
    const texts = await page.evaluate(
      (s) => [...document.querySelectorAll(`${s} .CodeMirror`)].map((e) => e.CodeMirror.getValue()).join("\n"),
      editor,
    );
    assert.ok(!texts.includes(token) && !texts.includes(server.admin.password), `a secret is in ${editor}`);
  }
});

test("the docs render under the CSP, and the explorer builds a query by clicking", { skip }, async () => {
  await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
  await page.locator(".graphiql-doc-explorer a.graphiql-doc-explorer-type-name").first().click();
  await page.locator(".graphiql-doc-explorer", { hasText: "licensePools" }).waitFor();

  await page.locator('.graphiql-sidebar button[aria-label="Show GraphiQL Explorer"]').click();
  await page.locator('.graphiql-explorer-root [data-field-name="licensePools"]').first().waitFor();
  await page.locator(".graphiql-tab-add").click(); // a new tab starts with the pools query too
  assert.doesNotMatch(await editorText(".graphiql-query-editor"), /\bmodules\b/);
  // A field of Query, then one of its fields: `modules { code }`.
  await page.locator('.graphiql-explorer-root [data-field-name="modules"]').first().click();
  await page.locator('.graphiql-explorer-modules [data-field-name="code"]').first().click();
  await page.waitForFunction(() =>
    /\bmodules\s*\{\s*code\s*\}/.test(document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.getValue()),
  );
  await page.locator(".graphiql-execute-button").click();
  await resultWhere((json) => json.data?.modules?.length > 0, "the modules the explorer added");
});

test("the page may open WebSockets to its own server only", { skip }, async () => {
  const outcome = await page.evaluate(async (probe) => {
    const blocked = [];
    const listen = (event) => blocked.push(event.blockedURI);
    document.addEventListener("securitypolicyviolation", listen);
    const attempt = (url) =>
      new Promise((resolve) => {
        const socket = new WebSocket(url, "graphql-transport-ws");
        socket.onopen = () => {
          socket.close();
          resolve("open");
        };
        socket.onerror = () => resolve("error");
      });
    await attempt(`ws://${location.host}/graphql?${probe}`);
    await attempt(`ws://elsewhere.invalid/graphql?${probe}`);
    await new Promise((r) => setTimeout(r, 200)); // violation reports are queued
    document.removeEventListener("securitypolicyviolation", listen);
    return blocked;
  }, PROBE);
  assert.deepEqual(outcome, [`ws://elsewhere.invalid/graphql?${PROBE}`], "connect-src allows ws: to this server alone");
});

// The end-to-end subscription step: runs once the server has
// Subscription.licensePools (graphql-ws over the same /graphql path), and
// is skipped, with a note from tests/clients.rs, until then.
test("a pool subscription started in the playground shows a change made through the API", { skip }, async (t) => {
  if (!subscriptions) {
    t.skip("the schema has no Subscription.licensePools yet");
    return;
  }
  const token = await sessionToken();
  await page.locator(".graphiql-tab-add").click();
  await setQuery("subscription LivePools {\n  licensePools { module { code } total used available nearLimit }\n}\n");
  // GraphiQL parses the editor shortly after a change; it sends a subscription over the WebSocket once it has.
  await page.locator(".graphiql-tab-active", { hasText: "LivePools" }).waitFor();
  await page.locator(".graphiql-execute-button").click();
  // The pools now (one pool or a list of them per message: either shape is read).
  const caseTotal = (json) => [json.data?.licensePools ?? []].flat().find((p) => p.module.code === "CASE")?.total;
  await resultWhere((json) => caseTotal(json) !== undefined, "the pools now");

  const socket = sockets.find((s) => s.url.startsWith(server.url.replace(/^http/, "ws")) && !s.url.includes(PROBE));
  assert.ok(socket, `the subscription runs over a WebSocket to this server: ${sockets.map((s) => s.url)}`);
  const init = socket.sent.map((f) => JSON.parse(f)).find((m) => m.type === "connection_init");
  assert.deepEqual(init?.payload, { Authorization: `Bearer ${token}` }, "the token is in connection_init");

  // Another administrator (here the operator, through the API) changes the pool.
  const operator = await signInByApi(server.operator);
  const sites = await api("{ sites(first: 5) { nodes { id name } } }", {}, operator);
  const site = sites.data.sites.nodes.find((s) => s.name === "Demo site");
  const changed = await api(
    "mutation($site: ID!) { setPoolTotal(siteId: $site, module: \"CASE\", total: 7) { __typename } }",
    { site: site.id },
    operator,
  );
  assert.equal(changed.data.setPoolTotal.__typename, "SetPoolTotalSuccess", JSON.stringify(changed));
  await resultWhere((json) => caseTotal(json) === 7, "the new CASE total, 7");
});

test("signing out ends the session on the server and in the tab", { skip }, async () => {
  const token = await sessionToken();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#session-message", { hasText: "Signed out." }).waitFor();
  assert.equal(await page.getByLabel("Username").isVisible(), true);
  assert.equal(await page.locator("#signed-in").isVisible(), false);
  assert.equal(await sessionToken(), null);
  const answer = await api("{ viewer { username } }", {}, token);
  assert.equal(answer.errors?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(answer));
  // A subscription's socket (if one ran) is closed with the session.
  for (const { socket } of sockets.filter((s) => !s.url.includes(PROBE))) {
    if (!socket.isClosed()) await socket.waitForEvent("close", { timeout: 5_000 });
  }
});

test("a session ended elsewhere is noticed when the tab reloads", { skip }, async () => {
  await page.getByLabel("Username").fill(server.admin.username);
  await page.getByLabel("Password").fill(server.admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#signed-in", { hasText: server.admin.username }).waitFor();
  const token = await sessionToken();
  assert.equal((await api("mutation { signOut }", {}, token)).data.signOut, true);
  await page.reload();
  await page.locator("#session-message", { hasText: "Your session has ended. Sign in again." }).waitFor();
  assert.equal(await page.locator("#signed-in").isVisible(), false);
  assert.equal(await sessionToken(), null);
});

test("every request stayed on the server, and nothing was blocked or failed on the page", { skip }, async () => {
  const elsewhere = requests.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith("data:"));
  assert.deepEqual(elsewhere, [], "the page asked for something off the server");
  assert.deepEqual(problems, [], "blocked content or errors on the page");
});
