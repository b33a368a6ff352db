// Prints the failed tests of a vitest JSON report (path in argv[2]): file, test name and the first
// lines of each failure. .ci/run calls it last on a failed run, so a log cut to its tail keeps it.
import fs from 'node:fs';

const report = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const failed = [];
for (const file of report.testResults ?? []) {
  const tests = (file.assertionResults ?? []).filter((t) => t.status === 'failed');
  if (tests.length === 0 && file.status === 'failed') failed.push({ where: file.name, name: '(the file itself)', messages: [file.message ?? ''] });
  for (const t of tests) failed.push({ where: file.name, name: t.fullName, messages: t.failureMessages ?? [] });
}
console.log(`---- failed tests: ${failed.length} (${report.numFailedTests ?? '?'} in the report) ----`);
for (const f of failed) {
  console.log(`FAILED ${f.where.replace(process.cwd() + '/', '')} > ${f.name}`);
  for (const m of f.messages) console.log(m.split('\n').slice(0, 12).map((l) => `    ${l}`).join('\n'));
}
