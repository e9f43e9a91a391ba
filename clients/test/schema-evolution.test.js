// The schema evolution guard: schema.graphql may change the released schema
// (schema.released.graphql) only by addition and by removing what the
// release had deprecated. How to release: docs/api.md, "Releasing a schema".

import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSchema } from "graphql";
import { breakingChangeReport, breakingChanges } from "../lib/evolution.js";
import { loadSchema } from "../lib/schema.js";

test("schema.graphql makes no breaking change to the released schema", () => {
  const report = breakingChangeReport(breakingChanges(loadSchema("schema.released.graphql"), loadSchema()));
  if (report !== null) assert.fail(report);
});

// The guard itself, on small schemas: what it refuses and what it lets through.


const releasedSdl = `
  type Query {
    pools(siteId: ID, first: Int): [Pool!]!
    oldPools: [OldPool!]! @deprecated(reason: "use pools")
    search(text: String, legacy: Boolean @deprecated(reason: "ignored")): [Pool!]!
  }
  type Mutation { setTotal(input: TotalInput!): Result! }
  input TotalInput { module: String!, total: Int!, note: String @deprecated(reason: "unused") }
  union Result = Done | Refused
  type Done { pool: Pool! }
  type Refused { code: Code! }
  enum Code { BELOW_USAGE NOT_FOUND LEGACY @deprecated(reason: "never sent") }
  type Pool { module: String!, total: Int!, used: Int!, ratio: Float @deprecated(reason: "use used and total") }
  type OldPool { module: String! }
`;
const released = buildSchema(releasedSdl);

/** The descriptions of the changes the guard refuses, with `edit` applied to the released SDL. */
function refused(edit) {
  const sdl = edit(releasedSdl);
  return breakingChanges(released, buildSchema(sdl))
    .filter((c) => !c.allowed)
    .map((c) => c.description);
}

test("the guard refuses removing or retyping a field that was not deprecated", () => {
  assert.deepEqual(refused((s) => s.replace("used: Int!, ", "")), ["Pool.used was removed."]);
  assert.deepEqual(refused((s) => s.replace("used: Int!", "used: String!")), [
    "Pool.used changed type from Int! to String!.",
  ]);
  assert.deepEqual(refused((s) => s.replace("used: Int!", "used: Int")), ["Pool.used changed type from Int! to Int."]);
});

test("the guard refuses removing or retyping an argument, and a new required argument", () => {
  assert.deepEqual(refused((s) => s.replace("pools(siteId: ID, first: Int)", "pools(first: Int)")), [
    "Query.pools arg siteId was removed.",
  ]);
  assert.deepEqual(refused((s) => s.replace("first: Int)", "first: String)")), [
    "Query.pools arg first has changed type from Int to String.",
  ]);
  assert.deepEqual(refused((s) => s.replace("first: Int)", "first: Int, site: ID!)")), [
    "A required arg site on Query.pools was added.",
  ]);
});

test("the guard refuses a removed enum value or type, and a new required input field", () => {
  assert.deepEqual(refused((s) => s.replace("BELOW_USAGE ", "")), ["BELOW_USAGE was removed from enum type Code."]);
  assert.deepEqual(
    refused((s) => s.replace("note: String", "reason: String!, note: String")),
    ["A required field reason on input type TotalInput was added."],
  );
  assert.deepEqual(refused((s) => s.replace("union Result = Done | Refused", "union Result = Done")), [
    "Refused was removed from union type Result.",
  ]);
});

test("the guard lets through removing what the release had deprecated, and additions", () => {
  const removed = (s) =>
    s
      .replace(`oldPools: [OldPool!]! @deprecated(reason: "use pools")`, "")
      .replace("type OldPool { module: String! }", "")
      .replace(`, legacy: Boolean @deprecated(reason: "ignored")`, "")
      .replace(`, note: String @deprecated(reason: "unused")`, "")
      .replace(`LEGACY @deprecated(reason: "never sent")`, "")
      .replace(`, ratio: Float @deprecated(reason: "use used and total")`, "");
  assert.deepEqual(refused(removed), []);
  const added = (s) =>
    s
      .replace("used: Int!", "used: Int!, id: ID!")
      .replace("first: Int)", "first: Int, last: Int)")
      .replace("NOT_FOUND", "NOT_FOUND OVER_LIMIT")
      .replace("note: String", "comment: String = \"\", note: String");
  assert.deepEqual(refused(added), []);
});

test("the guard's failure names each change and how to fix it", () => {
  const changes = breakingChanges(released, buildSchema(releasedSdl.replace("used: Int!, ", "")));
  const report = breakingChangeReport(changes);
  assert.match(report, /Pool\.used was removed\. Fix: keep it as released and mark it deprecated/);
  assert.match(report, /copy schema\.graphql to schema\.released\.graphql in the\s+release commit/);
});
