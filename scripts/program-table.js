#!/usr/bin/env node
/**
 * The README's table of real programs through the shim, from jest's JSON results
 * (`jest --json --outputFile=FILE`; .ci/run writes one). Program tests are named
 * "<program> as <role>: <what it checks>" (test/src/shim-*.test.ts); every test so named
 * becomes part of one row per program and role.
 *
 *   node scripts/program-table.js RESULTS.json                  # prints the Markdown table
 *   node scripts/program-table.js RESULTS.json --write README.md # and replaces it between
 *                                                                # <!-- programs:start --> and <!-- programs:end -->
 */

const fs = require('node:fs');

const NAME = /^(.+?) as (client and server|client|server): (.+)$/;
const START = '<!-- programs:start -->';
const END = '<!-- programs:end -->';

function rows(results) {
  const byKey = new Map();
  for (const file of results.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      const m = NAME.exec(a.title);
      if (m === null) continue;
      const [, program, role, what] = m;
      const key = `${program}\u0000${role}`;
      let row = byKey.get(key);
      if (row === undefined) {
        row = { program, role, passed: 0, failed: 0, skipped: 0, checks: [] };
        byKey.set(key, row);
      }
      if (a.status === 'passed') row.passed++;
      else if (a.status === 'failed') row.failed++;
      else row.skipped++;
      row.checks.push(what);
    }
  }
  return [...byKey.values()].sort((a, b) => a.program.localeCompare(b.program) || a.role.localeCompare(b.role));
}

function status(row) {
  if (row.failed > 0) return `**fails** (${row.failed} of ${row.passed + row.failed + row.skipped} tests)`;
  if (row.passed === 0) return 'not run';
  if (row.skipped > 0) return `works (${row.skipped} tests not run)`;
  return '**works**';
}

function table(results) {
  const lines = ['| Program | Role | Status | What the tests check |', '|---|---|---|---|'];
  for (const r of rows(results)) {
    const checks = r.checks.map((c) => c.replace(/\|/g, '\\|')).join('; ');
    lines.push(`| ${r.program} | ${r.role} | ${status(r)} | ${checks} |`);
  }
  return lines.join('\n');
}

function main(argv) {
  const [file, flag, target] = argv;
  if (file === undefined || (flag !== undefined && (flag !== '--write' || target === undefined))) {
    console.error('usage: program-table.js RESULTS.json [--write README.md]');
    return 2;
  }
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  const md = table(results);
  if (rows(results).length === 0) {
    console.log('(no program tests in these results)');
    return 0;
  }
  console.log(md);
  if (flag === '--write') {
    const text = fs.readFileSync(target, 'utf8');
    const i = text.indexOf(START);
    const j = text.indexOf(END);
    if (i < 0 || j < i) {
      console.error(`${target}: no ${START} ... ${END} markers`);
      return 1;
    }
    fs.writeFileSync(target, `${text.slice(0, i + START.length)}\n${md}\n${text.slice(j)}`);
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

module.exports = { rows, table };
