// The GraphQL examples in the documentation: fenced code blocks of README.md
// and docs/**/*.md.
//
// - ```graphql (or ```gql): an operation (checked with graphql-js `validate`
//   against schema.graphql), or an excerpt of the schema (type, interface,
//   input, enum, union or scalar definitions; each named field, argument,
//   member and value must be in schema.graphql with the same type).
// - ```graphql invalid: an example that shows what the server refuses; it
//   must NOT validate, so the marker cannot outlive the mistake it shows.
// - ```js / ```ts (and jsx, tsx, javascript, typescript, mjs): every
//   gql`...` or graphql(`...`) template in the block, checked like an
//   operation; `${...}` interpolations (fragments defined elsewhere) are
//   dropped, and with them the checks that need every fragment in view.

import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { repoRoot } from "./schema.js";

const SCRIPT = new Set(["js", "javascript", "mjs", "jsx", "ts", "typescript", "tsx"]);

/** The Markdown files whose examples are checked, relative to the repository. */
export function documentationFiles() {
  const files = ["README.md"];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) files.push(relative(repoRoot, path));
    }
  };
  walk(join(repoRoot, "docs"));
  return files.sort();
}

/**
 * Every GraphQL example in `file`: `{ where, source, invalid, interpolated }`,
 * where `where` is `file:line` of the example's first line.
 */
export function examplesIn(file) {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n");
  const examples = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/);
    if (!open) continue;
    const [, fence, lang, rest] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end].match(new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`))) end++;
    const body = lines.slice(i + 1, end).join("\n");
    const flags = rest.split(/\s+/);
    if (lang === "graphql" || lang === "gql") {
      examples.push({ where: `${file}:${i + 2}`, source: body, invalid: flags.includes("invalid"), interpolated: false });
    } else if (SCRIPT.has(lang)) {
      for (const m of body.matchAll(/\b(?:gql|graphql)\s*(?:\(\s*)?`([^`]*)`/g)) {
        const line = i + 2 + body.slice(0, m.index).split("\n").length - 1;
        const interpolated = m[1].includes("${");
        examples.push({ where: `${file}:${line}`, source: m[1].replace(/\$\{[^}]*\}/g, ""), invalid: false, interpolated });
      }
    }
    i = end;
  }
  return examples;
}
