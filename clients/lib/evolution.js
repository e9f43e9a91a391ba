// The schema evolution guard: the changes from the last released schema to
// the current one that would break a client built against the release.
//
// graphql-js `findBreakingChanges` finds them; a change is allowed when the
// shape it breaks was already deprecated in the release (a deprecated field,
// argument, input field or enum value, or a type that only deprecated
// fields lead to), since clients were told to move off it.

import {
  findBreakingChanges,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isUnionType,
} from "graphql";

/**
 * The names of the types of `schema` that a client can reach from the root
 * types without passing through anything deprecated.
 */
export function liveTypes(schema) {
  const live = new Set();
  const visit = (type) => {
    const named = getNamedType(type);
    if (!named || live.has(named.name)) return;
    live.add(named.name);
    if (isObjectType(named) || isInterfaceType(named)) {
      for (const field of Object.values(named.getFields())) {
        if (field.deprecationReason != null) continue;
        visit(field.type);
        for (const arg of field.args) if (arg.deprecationReason == null) visit(arg.type);
      }
      if (isInterfaceType(named)) schema.getPossibleTypes(named).forEach(visit);
    } else if (isUnionType(named)) {
      named.getTypes().forEach(visit);
    } else if (isInputObjectType(named)) {
      for (const field of Object.values(named.getFields())) if (field.deprecationReason == null) visit(field.type);
    }
  };
  [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(Boolean).forEach(visit);
  return live;
}

const MAKE_OPTIONAL = "make it optional (nullable, or with a default value)";
const DEPRECATE_FIRST =
  "keep it as released and mark it deprecated (async-graphql: #[graphql(deprecation = \"use ... instead\")]), " +
  "add the new shape under a new name if one is needed, and release that; remove it in a later release";
const KEEP = "keep it as released: clients that switch on __typename or spread fragments on it rely on it";

/**
 * The breaking changes from `released` to `current`, each
 * `{ description, allowed, fix }`: `allowed` when the release had
 * deprecated what the change breaks.
 */
export function breakingChanges(released, current) {
  const live = liveTypes(released);
  const typeIsLive = (name) => live.has(name);
  const fieldOf = (typeName, fieldName) => {
    const type = released.getType(typeName);
    return type && "getFields" in type ? type.getFields()[fieldName] : undefined;
  };
  const deprecated = (thing) => thing != null && thing.deprecationReason != null;
  // Whether the released field `t.f` (or its argument `a`) was deprecated or out of every live path.
  const retired = (t, f, a) => {
    const field = fieldOf(t, f);
    return !typeIsLive(t) || deprecated(field) || (a !== undefined && deprecated(field?.args.find((x) => x.name === a)));
  };

  return findBreakingChanges(released, current).map(({ type, description }) => {
    let m;
    let allowed = false;
    let fix = DEPRECATE_FIRST;
    if (description.startsWith("Standard scalar ")) {
      // Int, Float, String, Boolean and ID are built into every client, used or not.
      allowed = true;
    } else if ((m = description.match(/^(\w+)\.(\w+) (?:was removed|changed type from)/))) {
      allowed = retired(m[1], m[2]);
    } else if ((m = description.match(/^(\w+)\.(\w+) arg (\w+) (?:was removed|has changed type from)/))) {
      allowed = retired(m[1], m[2], m[3]);
    } else if ((m = description.match(/^A required arg \w+ on (\w+)\.(\w+) was added\.$/))) {
      allowed = retired(m[1], m[2]);
      fix = `${MAKE_OPTIONAL}, or add a new field with the argument and deprecate this one`;
    } else if ((m = description.match(/^A required field \w+ on input type (\w+) was added\.$/))) {
      allowed = !typeIsLive(m[1]);
      fix = MAKE_OPTIONAL;
    } else if ((m = description.match(/^(\w+) was removed from enum type (\w+)\.$/))) {
      const enumType = released.getType(m[2]);
      allowed = !typeIsLive(m[2]) || (isEnumType(enumType) && deprecated(enumType.getValue(m[1])));
    } else if ((m = description.match(/^(\w+) was removed\.$/))) {
      allowed = !typeIsLive(m[1]);
      fix = "keep the type while a field that is not deprecated leads to it; deprecate those fields first";
    } else if ((m = description.match(/^\w+ was removed from union type (\w+)\.$/))) {
      allowed = !typeIsLive(m[1]);
      fix = KEEP;
    } else if ((m = description.match(/^(\w+) (?:no longer implements interface \w+|changed from an? )/))) {
      allowed = !typeIsLive(m[1]);
      fix = KEEP;
    } else {
      fix = `${KEEP} (${type})`;
    }
    return { description, allowed, fix };
  });
}

/** The failure message for the changes that are not allowed, or `null` when there are none. */
export function breakingChangeReport(changes, releasedFile = "schema.released.graphql") {
  const refused = changes.filter((c) => !c.allowed);
  if (refused.length === 0) return null;
  return [
    `schema.graphql breaks clients built against the released schema (${releasedFile}):`,
    ...refused.map((c) => `  - ${c.description} Fix: ${c.fix}.`),
    "A client generated from the release keeps working only if the schema changes by addition and deprecation.",
    `If the break is intended (a release that may break clients), copy schema.graphql to ${releasedFile} in the`,
    "release commit, as docs/api.md (Releasing a schema) says.",
  ].join("\n");
}
