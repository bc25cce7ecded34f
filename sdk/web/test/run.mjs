// Runs the compiled tests: unit always; integration and e2e when IMD_PATH names an imd binary
// (e2e also needs Chromium: CHROMIUM_PATH, default /usr/bin/chromium).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../.test-build/test/', import.meta.url).pathname;
const suites = ['unit'];
if (process.env.IMD_PATH) suites.push('integration', 'e2e');
else console.log('web sdk: IMD_PATH not set: integration and e2e tests skipped');
const files = suites.flatMap((s) => {
  const dir = join(root, s);
  return existsSync(dir)
    ? readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => join(dir, f)) : [];
});
const r = spawnSync(process.execPath,
                    // Each test ends by itself (a mutated SDK that reconnects forever must not
                    // hang the suite): a per-test timeout, and exit once the files are done.
                    ['--test', '--test-reporter=spec', '--test-concurrency=1',
                     '--test-timeout=120000', '--test-force-exit', ...files],
                    { stdio: 'inherit' });
process.exit(r.status ?? 1);
