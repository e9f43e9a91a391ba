// Every GraphQL example in README.md and docs/ is valid against
// schema.graphql (see lib/examples.js for what counts as an example and how
// to show an invalid one on purpose).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Kind,
  KnownFragmentNamesRule,
  NoUnusedFragmentsRule,
  parse,
  specifiedRules,
  typeFromAST,
  validate,
} from "graphql";
import { documentationFiles, examplesIn } from "../lib/examples.js";
import { loadSchema } from "../lib/schema.js";

const schema = loadSchema();

const EXECUTABLE = new Set([Kind.OPERATION_DEFINITION, Kind.FRAGMENT_DEFINITION]);

/** The problems of one example; empty when it is valid. */
function problems({ source, interpolated }) {
  let document;
  try {
    document = parse(source);
  } catch (e) {
    return [e.message];
  }
  const executable = document.definitions.filter((d) => EXECUTABLE.has(d.kind));
  if (executable.length === document.definitions.length) {
    const hasOperation = executable.some((d) => d.kind === Kind.OPERATION_DEFINITION);
    const rules = specifiedRules.filter(
      (rule) =>
        !(rule === NoUnusedFragmentsRule && (!hasOperation || interpolated)) &&
        !(rule === KnownFragmentNamesRule && interpolated),
    );
    return validate(schema, document, rules).map((e) => e.message);
  }
  if (executable.length === 0) {
    return document.definitions.flatMap(excerptProblems);
  }
  return ["mixes operations with type definitions: show them in separate blocks"];
}

/** A type definition shown in the docs against the same type in the schema. */
function excerptProblems(def) {
  const name = def.name?.value;
  const actual = name && schema.getType(name);
  if (!actual) return [`type ${name ?? "(unnamed)"} is not in schema.graphql`];
  const kinds = {
    [Kind.OBJECT_TYPE_DEFINITION]: "GraphQLObjectType",
    [Kind.INTERFACE_TYPE_DEFINITION]: "GraphQLInterfaceType",
    [Kind.INPUT_OBJECT_TYPE_DEFINITION]: "GraphQLInputObjectType",
    [Kind.ENUM_TYPE_DEFINITION]: "GraphQLEnumType",
    [Kind.UNION_TYPE_DEFINITION]: "GraphQLUnionType",
    [Kind.SCALAR_TYPE_DEFINITION]: "GraphQLScalarType",
  };
  if (actual.constructor.name !== kinds[def.kind]) {
    return [`${name} is a ${actual.constructor.name.replace("GraphQL", "")} in schema.graphql`];
  }
  const out = [];
  const sameType = (node, real, what) => {
    let shown;
    try {
      shown = typeFromAST(schema, node);
    } catch (e) {
      shown = undefined;
    }
    if (!shown || String(shown) !== String(real)) {
      out.push(`${what} is ${real} in schema.graphql, not ${printType(node)}`);
    }
  };
  const fields = actual.getFields?.() ?? {};
  for (const field of def.fields ?? []) {
    const real = fields[field.name.value];
    const path = `${name}.${field.name.value}`;
    if (!real) {
      out.push(`${path} is not in schema.graphql`);
      continue;
    }
    sameType(field.type, real.type, path);
    for (const arg of field.arguments ?? []) {
      const realArg = real.args.find((a) => a.name === arg.name.value);
      if (!realArg) out.push(`${path}(${arg.name.value}:) is not in schema.graphql`);
      else sameType(arg.type, realArg.type, `${path}(${arg.name.value}:)`);
    }
  }
  for (const value of def.values ?? []) {
    if (!actual.getValue(value.name.value)) out.push(`${name}.${value.name.value} is not in schema.graphql`);
  }
  for (const member of def.types ?? []) {
    if (!actual.getTypes().some((t) => t.name === member.name.value)) {
      out.push(`${member.name.value} is not a member of ${name} in schema.graphql`);
    }
  }
  return out;
}

function printType(node) {
  if (node.kind === Kind.NON_NULL_TYPE) return `${printType(node.type)}!`;
  if (node.kind === Kind.LIST_TYPE) return `[${printType(node.type)}]`;
  return node.name.value;
}

const examples = documentationFiles().flatMap(examplesIn);

test("the documentation has GraphQL examples to check", () => {
  assert.ok(examples.length >= 2, `found only ${examples.length} examples in ${documentationFiles()}`);
});

for (const example of examples) {
  test(`the example at ${example.where} ${example.invalid ? "is invalid, as marked" : "is valid"}`, () => {
    const found = problems(example);
    if (example.invalid) {
      assert.ok(found.length > 0, `${example.where} is marked \`graphql invalid\` but is valid: drop the marker`);
    } else {
      assert.deepEqual(found, [], `${example.where} does not match schema.graphql:\n  ${found.join("\n  ")}`);
    }
  });
}

// The checker itself: it catches what a stale example looks like.
test("a stale example is caught", () => {
  const stale = { source: "{ licensePools { module { code } totl } }", interpolated: false };
  assert.match(problems(stale).join(), /Cannot query field "totl"/);
  const excerpt = { source: "type LicensePool { total: String! gone: Int }", interpolated: false };
  assert.deepEqual(problems(excerpt), [
    "LicensePool.total is Int! in schema.graphql, not String!",
    "LicensePool.gone is not in schema.graphql",
  ]);
});
