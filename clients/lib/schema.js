// The committed contract, `schema.graphql`, as graphql-js sees it, and what
// a client generates from it.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSchema, introspectionFromSchema } from "graphql";

/** The repository's top directory. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The schema in the file `name` at the top of the repository. */
export function loadSchema(name = "schema.graphql") {
  return buildSchema(readFileSync(join(repoRoot, name), "utf8"));
}

/**
 * Apollo Client's `possibleTypes` for `schema`: each interface and union
 * with the object types that belong to it, from an introspection result,
 * exactly what graphql-codegen's `fragment-matcher` plugin writes.
 */
export function possibleTypesOf(schema) {
  const possibleTypes = {};
  for (const type of introspectionFromSchema(schema).__schema.types) {
    if (type.possibleTypes) {
      possibleTypes[type.name] = type.possibleTypes.map((t) => t.name);
    }
  }
  return possibleTypes;
}

/** Whether the object or interface `typeName` of `schema` has the field `field`. */
export function hasField(schema, typeName, field) {
  const type = schema.getType(typeName);
  return Boolean(type && "getFields" in type && type.getFields()[field]);
}
