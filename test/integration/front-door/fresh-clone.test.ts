/**
 * The newcomer's first minutes, for real: a fresh clone with no node_modules, the README's make
 * targets, the machine's own (older) node first on PATH. Guards the parse-time fault where make
 * resolved Node 24 before `deps` had installed it, every recipe became "--import tsx ..." (a line
 * make reads as "ignore errors"), and `make test-unit` ran nothing and exited 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onPath } from '../../lab/tools.js';

const REPO = resolve(import.meta.dirname, '../../..');
const skip = !onPath('git') ? 'git is not installed' : !onPath('npm') ? 'npm is not installed' : !existsSync(join(REPO, '.git')) ? 'not a git checkout' : false;

/** This process's env without the test runner's own markers (a nested `node --test` would skip its files). */
function newcomerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NODE_TEST') && k !== 'NODE_OPTIONS'));
}

function make(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('make', ['--no-print-directory', ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 300_000,
    // The machine's PATH as a newcomer has it: whatever node it has (v20 on the build machines).
    env: {
      ...newcomerEnv(),
      ...env,
      PATH: (process.env.PATH ?? '')
        .split(':')
        .filter((p) => !p.includes('node_modules'))
        .join(':'),
    },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('fresh clone, empty node_modules', { skip }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'se-fresh-'));
    const r = spawnSync('git', ['clone', '--quiet', REPO, join(dir, 'repo')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    dir = join(dir, 'repo');
    assert.equal(existsSync(join(dir, 'node_modules')), false);
  });
  after(() => rmSync(resolve(dir, '..'), { recursive: true, force: true }));

  test('the first make target installs Node 24 and really runs the tests', () => {
    const r = make(dir, ['test-unit', 'UNIT=test/unit/lab-tools.test.ts']);
    assert.equal(r.status, 0, r.out);
    assert.doesNotMatch(r.out, /ignored|command not found/, r.out);
    assert.match(r.out, /ℹ pass [1-9]/, `the tests must have run:\n${r.out}`);
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
    assert.ok(existsSync(join(dir, `node_modules/node-linux-${arch}/bin/node`)), 'Node 24 comes from the npm registry');
  });

  test('a failing test makes make exit non-zero', () => {
    writeFileSync(join(dir, 'test/unit/zz-must-fail.test.ts'), "import { test } from 'node:test';\ntest('fails', () => { throw new Error('expected'); });\n");
    const r = make(dir, ['test-unit', 'UNIT=test/unit/zz-must-fail.test.ts']);
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /ℹ fail 1/, r.out);
  });

  test('a test glob that matches nothing fails instead of passing empty', () => {
    const r = make(dir, ['test-unit', 'UNIT=test/unit/no-such-dir/**/*.test.ts']);
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /no test files match/, r.out);
  });

  test('make demo (simulated) tells the failover story on the fresh clone', () => {
    const r = make(dir, ['demo'], { DEMO_SIMULATED: '1' });
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Done\./, r.out);
    assert.match(r.out, /conntrack entries were flushed/, r.out);
  });
});
