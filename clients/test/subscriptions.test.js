// Subscriptions with the graphql-ws client (what Apollo's GraphQLWsLink and
// urql's subscriptionExchange run on), as docs/api.md sets it up, against
// the real server: on SQLite one server (changes reach subscribers through
// the process's channel); on PostgreSQL two server processes sharing one
// database, so a change made through one reaches a subscriber of the other
// through LISTEN/NOTIFY. tests/clients.rs creates that database and passes
// it as LICENSE_GATEWAY_POSTGRES_URL (from TEST_POSTGRES_URL).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { isSubscriptionOperation } from "@apollo/client/utilities";
import { loadSchema, possibleTypesOf } from "../lib/schema.js";
import { startServer } from "../lib/server.js";

// Node.js 20 has no WebSocket of its own; browsers do.
globalThis.WebSocket ??= WebSocket;

const POOLS = `subscription Pools($siteId: ID) {
  licensePools(siteId: $siteId) { id module { code } total used available version }
}`;

/** POSTs a GraphQL request to `server` as `token`; resolves to `data` (fails on errors). */
async function gqlOk(server, token, query, variables = {}) {
  const response = await fetch(server.graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data;
}

async function signIn(server, { username, password }) {
  const data = await gqlOk(
    server,
    null,
    `mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }`,
    { u: username, p: password },
  );
  assert.ok(data.signIn.token, JSON.stringify(data));
  return data.signIn.token;
}

/** A graphql-ws client of `server` signed in with `token` (none: anonymous), that does not retry. */
function wsClient(server, token) {
  return createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
}

/** The next value of `iterator` within `ms`, or `"nothing"`. */
async function within(iterator, ms) {
  let timer;
  const quiet = new Promise((resolve) => (timer = setTimeout(() => resolve("nothing"), ms)));
  try {
    const next = await Promise.race([iterator.next(), quiet]);
    return next === "nothing" ? next : next.value;
  } finally {
    clearTimeout(timer);
  }
}

/** (used, total) of `code`'s pool in a licensePools update. */
function pool(update, code) {
  const p = update.data.licensePools.find((p) => p.module.code === code);
  return [p.used, p.total];
}

/** Whether no pool of `later` is older than in `earlier` (by `version`), and some is newer. */
function newer(later, earlier) {
  const before = Object.fromEntries(earlier.data.licensePools.map((p) => [p.id, p.version]));
  const after = later.data.licensePools;
  return after.every((p) => p.version >= before[p.id]) && after.some((p) => p.version > before[p.id]);
}

/** The demo user on the Case profile, and the profile ids by name. */
async function demo(server, token) {
  const data = await gqlOk(server, token, `{ users { nodes { id username profile { name } } } profiles { id name } }`);
  const user = data.users.nodes.find((u) => u.profile.name === "Case");
  const profiles = Object.fromEntries(data.profiles.map((p) => [p.name, p.id]));
  return { user: user.id, profiles };
}

const MOVE = `mutation($id: ID!, $p: ID!) { changeLoginProfile(id: $id, profileId: $p) { __typename } }`;

/** The tests, with `servers()` giving [the server changes go through, the one subscribers use]. */
function subscriptionTests(servers) {
  test("a committed change reaches a subscriber with the new numbers, first the state now, versions only growing", async () => {
    const [changes, subscribers] = servers();
    const token = await signIn(changes, changes.admin);
    const { user, profiles } = await demo(changes, token);
    const client = wsClient(subscribers, token);
    const updates = client.iterate({ query: POOLS });
    try {
      const first = await updates.next();
      assert.deepEqual(pool(first.value, "DOCUMENT"), [2, 3], JSON.stringify(first.value));
      let last = first.value;
      for (const [profile, documentUsed] of [["Case and Document", 3], ["Case", 2], ["Case and Document", 3]]) {
        await gqlOk(changes, token, MOVE, { id: user, p: profiles[profile] });
        let update;
        do {
          update = (await updates.next()).value;
          assert.ok(newer(update, last), `versions only grow: ${JSON.stringify(update)}`);
          last = update;
        } while (pool(update, "DOCUMENT")[0] !== documentUsed);
        assert.deepEqual(pool(update, "CASE"), [2, 5]);
      }
      await gqlOk(changes, token, MOVE, { id: user, p: profiles["Case"] });
    } finally {
      await updates.return();
      await client.dispose();
    }
  });

  test("a subscriber of another site receives nothing of this site's changes", async () => {
    const [changes, subscribers] = servers();
    const operator = await signIn(changes, changes.operator);
    const name = `Other ${Math.random().toString(36).slice(2, 8)}`;
    const username = name.toLowerCase().replace(" ", "-");
    await gqlOk(
      changes,
      operator,
      `mutation($i: CreateSiteInput!) { createSite(input: $i) { __typename } }`,
      {
        i: {
          name,
          agreementName: `${name} agreement`,
          selfService: true,
          pools: [{ module: "CASE", total: 1 }],
          administrator: { name: `${name} Admin`, username, password: "violet tugboat measures gravel" },
        },
      },
    );
    const otherToken = await signIn(changes, { username, password: "violet tugboat measures gravel" });
    const token = await signIn(changes, changes.admin);
    const { user, profiles } = await demo(changes, token);
    const client = wsClient(subscribers, otherToken);
    const updates = client.iterate({ query: POOLS });
    const audit = client.iterate({ query: `subscription { auditEvents { id action } }` });
    try {
      const first = (await updates.next()).value;
      assert.deepEqual(pool(first, "CASE"), [0, 1]);
      await gqlOk(changes, token, MOVE, { id: user, p: profiles["Case and Document"] });
      await gqlOk(changes, token, MOVE, { id: user, p: profiles["Case"] });
      assert.equal(await within(updates, 1000), "nothing");
      assert.equal(await within(audit, 10), "nothing");
    } finally {
      await updates.return();
      await audit.return();
      await client.dispose();
    }
  });

  test("signing out ends the subscription: the socket closes with 4403", async () => {
    const [changes, subscribers] = servers();
    const token = await signIn(changes, changes.admin);
    const client = wsClient(subscribers, token);
    const updates = client.iterate({ query: POOLS });
    try {
      await updates.next();
      assert.deepEqual(await gqlOk(changes, token, `mutation { signOut }`), { signOut: true });
      await assert.rejects(updates.next(), (closed) => {
        assert.equal(closed.code, 4403, String(closed.reason));
        assert.match(closed.reason, /session ended/);
        return true;
      });
    } finally {
      await client.dispose();
    }
  });

  test("an unauthenticated connection is refused with 4403", async () => {
    const [, subscribers] = servers();
    for (const token of [null, "not-a-token"]) {
      const client = wsClient(subscribers, token);
      try {
        await assert.rejects(client.iterate({ query: POOLS }).next(), (closed) => {
          assert.equal(closed.code, 4403, String(closed.reason));
          return true;
        });
      } finally {
        await client.dispose();
      }
    }
  });

  test("Apollo Client's GraphQLWsLink updates the pools in its normalized cache", async () => {
    const [changes, subscribers] = servers();
    const token = await signIn(changes, changes.admin);
    const { user, profiles } = await demo(changes, token);
    const ws = wsClient(subscribers, token);
    const apollo = new ApolloClient({
      link: ApolloLink.split(
        ({ query }) => isSubscriptionOperation(query),
        new GraphQLWsLink(ws),
        new HttpLink({ uri: subscribers.graphqlUrl, headers: { authorization: `Bearer ${token}` } }),
      ),
      cache: new InMemoryCache({ possibleTypes: possibleTypesOf(loadSchema()) }),
    });
    const QUERY = gql`query { licensePools { id module { code } used total version } }`;
    const { data } = await apollo.query({ query: QUERY });
    const document = data.licensePools.find((p) => p.module.code === "DOCUMENT");
    const seen = [];
    const subscription = apollo.subscribe({ query: gql(POOLS) }).subscribe({ next: (v) => seen.push(v) });
    try {
      while (seen.length === 0) await new Promise((r) => setTimeout(r, 20));
      await gqlOk(changes, token, MOVE, { id: user, p: profiles["Case and Document"] });
      const deadline = Date.now() + 10_000;
      // The query's own pool object, found by its id, shows the new number without a refetch.
      const cached = () =>
        apollo.cache.readFragment({ id: apollo.cache.identify(document), fragment: gql`fragment U on LicensePool { used version }` });
      while (cached().used !== document.used + 1) {
        assert.ok(Date.now() < deadline, "the cached pool did not change");
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(cached().version > document.version);
      await gqlOk(changes, token, MOVE, { id: user, p: profiles["Case"] });
    } finally {
      subscription.unsubscribe();
      await ws.dispose();
    }
  });
}

describe("on SQLite, one server", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());
  subscriptionTests(() => [server, server]);
});

const postgres = process.env.LICENSE_GATEWAY_POSTGRES_URL;
describe(
  "on PostgreSQL, two server processes on one database",
  { skip: !postgres && "needs LICENSE_GATEWAY_POSTGRES_URL (tests/clients.rs sets it when TEST_POSTGRES_URL is set)" },
  () => {
    let first;
    let second;
    before(async () => {
      first = await startServer([], { databaseUrl: postgres });
      second = await startServer([], { databaseUrl: postgres, credentials: { operator: first.operator, admin: first.admin } });
    });
    after(async () => {
      await second?.stop();
      await first?.stop();
    });
    subscriptionTests(() => [first, second]);
  },
);
