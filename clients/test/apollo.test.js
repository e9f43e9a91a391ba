// Apollo Client against the real server, set up as docs/api.md tells a
// frontend team: possibleTypes generated from schema.graphql, relay-style
// paging for connections, a bearer token per client.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { relayStylePagination } from "@apollo/client/utilities";
import { hasField, loadSchema, possibleTypesOf } from "../lib/schema.js";
import { startServer } from "../lib/server.js";

const schema = loadSchema();
const possibleTypes = possibleTypesOf(schema);

let server;
let adminToken;

before(async () => {
  server = await startServer();
  adminToken = await signIn(server.admin);
});
after(() => server?.stop());

/** An Apollo Client with its own cache, sending `token` (if any) as a bearer token. */
function client({ token, cache = {}, links = [], fetch = globalThis.fetch } = {}) {
  const http = new HttpLink({
    uri: server.graphqlUrl,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    fetch,
  });
  return new ApolloClient({
    link: links.reduceRight((next, link) => link.concat(next), http),
    cache: new InMemoryCache({ possibleTypes, ...cache }),
  });
}

const SIGN_IN = gql`
  mutation SignIn($username: String!, $password: String!) {
    signIn(username: $username, password: $password) {
      __typename
      ... on SignInSuccess { token viewer { kind username } }
      ... on Refusal { code message }
    }
  }
`;

async function signIn({ username, password }) {
  const { data } = await client().mutate({ mutation: SIGN_IN, variables: { username, password } });
  assert.equal(data.signIn.__typename, "SignInSuccess", JSON.stringify(data));
  return data.signIn.token;
}

test("the demo administrator signs in and reads the site with its pools in one nested query", async () => {
  const { data } = await client({ token: adminToken }).query({
    query: gql`
      query Overview {
        viewer {
          kind
          username
          site { id name licensePools { module { id code } total used available } }
        }
      }
    `,
  });
  assert.equal(data.viewer.kind, "SITE_ADMINISTRATOR");
  assert.equal(data.viewer.username, server.admin.username);
  assert.equal(data.viewer.site.name, "Demo site");
  const pools = Object.fromEntries(data.viewer.site.licensePools.map((p) => [p.module.code, p]));
  assert.equal(pools.CASE.total, 5);
  assert.equal(pools.DOCUMENT.total, 3);
  for (const p of Object.values(pools)) assert.equal(p.available, p.total - p.used);
});

test("a wrong password is a typed refusal the generic Refusal fragment reads", async () => {
  const { data } = await client().mutate({
    mutation: SIGN_IN,
    variables: { username: server.admin.username, password: "not the password at all" },
  });
  assert.equal(data.signIn.__typename, "SignInRefused");
  assert.equal(typeof data.signIn.code, "string");
  assert.ok(data.signIn.message.length > 0, JSON.stringify(data));
});

const PEOPLE = gql`
  query People($first: Int, $after: String) {
    people(first: $first, after: $after) {
      edges { cursor node { id name } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const PEOPLE_FROM_THE_END = gql`
  query PeopleFromTheEnd($last: Int, $before: String) {
    people(last: $last, before: $before) {
      totalCount
      edges { cursor node { id name } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
`;

/**
 * Pages through people as a screen does: watches `query` with `variables`,
 * renders every result, and fetches the page `next` names while `more` says
 * there is one. Answers the size of each list rendered and the last list.
 */
async function pageThrough(query, variables, more, next) {
  const apollo = client({
    token: adminToken,
    cache: { typePolicies: { Query: { fields: { people: relayStylePagination(["siteId", "filter"]) } } } },
  });
  const watched = apollo.watchQuery({ query, variables });
  const rendered = [];
  let wake = () => {};
  const subscription = watched.subscribe((result) => {
    if (result.data?.people) rendered.push(result.data.people);
    wake();
  });
  /** The next rendered list with more than `shown` people. */
  const longerThan = async (shown) => {
    const deadline = Date.now() + 5000;
    while (!(rendered.at(-1)?.edges.length > shown)) {
      assert.ok(Date.now() < deadline, `no list longer than ${shown} was rendered: ${rendered.map((r) => r.edges.length)}`);
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return rendered.at(-1);
  };
  try {
    let people = await longerThan(0);
    const sizes = [people.edges.length];
    while (more(people)) {
      assert.ok(sizes.length < 10, `paging does not end: ${sizes}`);
      await watched.fetchMore({ variables: next(people) });
      people = await longerThan(people.edges.length);
      sizes.push(people.edges.length);
    }
    return { sizes, people };
  } finally {
    subscription.unsubscribe();
  }
}

/** Every person's name, in the list's order, from one page. */
async function everyone() {
  const apollo = client({ token: adminToken });
  const { data } = await apollo.query({ query: PEOPLE, variables: { first: 100 }, fetchPolicy: "no-cache" });
  return data.people.edges.map((e) => e.node.name);
}

test("relay-style paging forward through people, two at a time, ends with every person once", async () => {
  const names = await everyone();
  assert.equal(names.length, 6, `the demo site has six people: ${names}`);
  const { sizes, people } = await pageThrough(
    PEOPLE,
    { first: 2 },
    (page) => page.pageInfo.hasNextPage,
    (page) => ({ after: page.pageInfo.endCursor }),
  );
  // The cache merged the pages into one list, in the server's order.
  assert.deepEqual(sizes, [2, 4, 6]);
  assert.deepEqual(people.edges.map((e) => e.node.name), names);
});

test("relay-style paging backward through people from the end puts each page before the others", async () => {
  const names = await everyone();
  const { sizes, people } = await pageThrough(
    PEOPLE_FROM_THE_END,
    { last: 2 },
    (page) => page.pageInfo.hasPreviousPage,
    (page) => ({ before: page.pageInfo.startCursor }),
  );
  assert.deepEqual(sizes, [2, 4, 6]);
  assert.deepEqual(people.edges.map((e) => e.node.name), names);
  assert.equal(people.totalCount, names.length);
});

const PASSWORD = "violet tugboat measures gravel";

const CREATE_LOGIN = gql`
  mutation CreateLogin($input: CreateLoginInput!) {
    createLogin(input: $input) {
      __typename
      ... on CreateLoginSuccess { user { id username } licensePools { module { code } total used available } }
      ... on Refusal { code message }
      ... on LicenseLimitExceeded { remedy shortages { module { code } needed available shortfall } }
    }
  }
`;

/** The ids of the demo's people without a login, and of its profile `name`. */
async function demoIds(apollo, name) {
  const { data } = await apollo.query({
    query: gql`
      query Ids {
        people(filter: { hasLogin: false }) { nodes { id name } }
        profiles { id name }
      }
    `,
    fetchPolicy: "no-cache",
  });
  return { people: data.people.nodes, profile: data.profiles.find((p) => p.name === name).id };
}

test("a refusal is read by __typename, with its numbers, through possibleTypes generated from the schema", async () => {
  const apollo = client({ token: adminToken });
  const { people, profile } = await demoIds(apollo, "Case and Document");
  assert.ok(people.length >= 2, JSON.stringify(people));
  const results = [];
  for (const [i, person] of people.slice(0, 2).entries()) {
    const input = { personId: person.id, profileId: profile, username: `refusal${i}`, password: PASSWORD };
    results.push((await apollo.mutate({ mutation: CREATE_LOGIN, variables: { input } })).data.createLogin);
  }
  // The first takes the last Document license; the second is refused whole.
  assert.equal(results[0].__typename, "CreateLoginSuccess", JSON.stringify(results[0]));
  const refusal = results[1];
  assert.equal(refusal.__typename, "LicenseLimitExceeded", JSON.stringify(refusal));
  assert.equal(refusal.code, "LICENSE_LIMIT_EXCEEDED");
  assert.ok(refusal.message.length > 0);
  assert.equal(refusal.remedy, "LICENSE_ORDER");
  assert.deepEqual(refusal.shortages, [
    {
      __typename: "LicenseShortage",
      module: { __typename: "Module", code: "DOCUMENT" },
      needed: 1,
      available: 0,
      shortfall: 1,
    },
  ]);
});

test("without possibleTypes the generic Refusal fragment comes back empty (why clients need them)", async () => {
  const apollo = client({ token: adminToken, cache: { possibleTypes: {} } });
  const { people, profile } = await demoIds(apollo, "Document");
  // The test before took the last Document license.
  const input = { personId: people[0].id, profileId: profile, username: "no-possible-types", password: PASSWORD };
  const { data } = await apollo.mutate({ mutation: CREATE_LOGIN, variables: { input } });
  assert.equal(data.createLogin.__typename, "LicenseLimitExceeded", JSON.stringify(data));
  assert.equal(data.createLogin.code, undefined, "Apollo matched `... on Refusal` without possibleTypes");
  assert.equal(data.createLogin.remedy, "LICENSE_ORDER");
});

test(
  "the normalized cache shows a mutation's new pool numbers without a refetch",
  { skip: !hasField(schema, "LicensePool", "id") && "needs LicensePool.id (issue 16, item 2: cache identity)" },
  async () => {
    const apollo = client({ token: adminToken });
    const POOLS = gql`
      query Pools { licensePools { id module { code } total used available } }
    `;
    const before = (await apollo.query({ query: POOLS })).data.licensePools.find((p) => p.module.code === "CASE");
    const { data: created } = await apollo.mutate({
      mutation: gql`
        mutation Person($input: CreatePersonInput!) {
          createPerson(input: $input) { ... on CreatePersonSuccess { person { id } } }
        }
      `,
      variables: { input: { name: "Greta Gran" } },
    });
    const { profile } = await demoIds(apollo, "Case");
    const { data } = await apollo.mutate({
      mutation: gql`
        mutation CreateLogin($input: CreateLoginInput!) {
          createLogin(input: $input) {
            __typename
            ... on CreateLoginSuccess { licensePools { id used available } }
          }
        }
      `,
      variables: {
        input: { personId: created.createPerson.person.id, profileId: profile, username: "greta", password: PASSWORD },
      },
    });
    assert.equal(data.createLogin.__typename, "CreateLoginSuccess", JSON.stringify(data));
    // Read from the cache only: the screen that showed the pools updates without asking the server.
    const after = (await apollo.query({ query: POOLS, fetchPolicy: "cache-only" })).data.licensePools.find(
      (p) => p.module.code === "CASE",
    );
    assert.equal(after.used, before.used + 1);
    assert.equal(after.available, before.available - 1);
  },
);

test(
  "automatic persisted queries: a hash first, the full query once, then the hash alone",
  async () => {
    const sent = [];
    const recording = (url, init) => {
      const body = JSON.parse(init.body);
      sent.push({ hash: body.extensions?.persistedQuery?.sha256Hash, query: body.query !== undefined });
      return fetch(url, init);
    };
    const sha256 = (text) => createHash("sha256").update(text).digest("hex");
    const apollo = client({ token: adminToken, fetch: recording, links: [new PersistedQueryLink({ sha256 })] });
    const MODULES = gql`
      query Modules { modules { id code } }
    `;
    for (let i = 0; i < 2; i++) {
      const { data } = await apollo.query({ query: MODULES, fetchPolicy: "network-only" });
      assert.ok(data.modules.some((m) => m.code === "CASE"), JSON.stringify(data));
    }
    const hash = sent[0].hash;
    assert.match(hash ?? "", /^[0-9a-f]{64}$/);
    assert.deepEqual(sent, [
      { hash, query: false }, // unknown to the server: PersistedQueryNotFound
      { hash, query: true }, // the link sends the query with its hash once
      { hash, query: false }, // and from then on the hash alone
    ]);
  },
);
