import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createUser } from '../../../agent/src/auth/accounts.js';
import { openStateDb } from '../../../agent/src/core/db.js';
import { setupCodeCommand } from '../../../agent/src/setup/cli.js';
import { normaliseCode, SetupCodeStore } from '../../../agent/src/setup/code.js';

/** `surgery-edge setup-code`, the console fallback, and the code store's rules. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const orig = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  let out = '';
  // The test runner talks to its parent over stdout in Buffers: pass those through, keep our strings.
  process.stdout.write = ((c: string | Uint8Array, ...rest: unknown[]) =>
    typeof c === 'string' ? ((out += c), true) : (orig as (...a: unknown[]) => boolean)(c, ...rest)) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return { code: await fn(), out };
  } finally {
    process.stdout.write = orig;
    process.stderr.write = origErr;
  }
}

describe('set-up code: store and CLI', () => {
  it('normalises what people type; rejects the wrong length or alphabet', () => {
    assert.equal(normaliseCode(' 7kq2m xw9pa '), '7KQ2MXW9PA');
    assert.equal(normaliseCode('OIL00-11111'), '01100' + '11111');
    assert.equal(normaliseCode('7KQ2M-XW9P'), null);
    assert.equal(normaliseCode('7KQ2M-XW9PU'), null, 'U is not in Crockford base32');
  });

  it('prints the same code until --new; the old one then stops working; refuses once set up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-setup-cli-'));
    try {
      const cfg = join(dir, 'config.yaml');
      writeFileSync(cfg, `version: 1\npaths:\n  stateDir: ${dir}/state\n  runDir: ${dir}/run\n  root: ${dir}/root\nstatus:\n  setup:\n    required: true\n`);
      const a = await capture(() => setupCodeCommand.run(['--config', cfg]));
      assert.equal(a.code, 0);
      assert.match(a.out, /^[0-9A-Z]{5}-[0-9A-Z]{5}\n$/);
      const b = await capture(() => setupCodeCommand.run(['--config', cfg]));
      assert.equal(b.out, a.out, 'stable while unused');
      const c = await capture(() => setupCodeCommand.run(['--config', cfg, '--new']));
      assert.notEqual(c.out, a.out);
      const store = new SetupCodeStore({ stateDir: join(dir, 'state'), runDir: join(dir, 'run') });
      assert.equal(await store.redeem(a.out.trim()), 'wrong', 'the replaced code is dead');
      assert.equal(await store.redeem(c.out.trim()), 'ok');
      assert.equal(await store.redeem(c.out.trim()), 'spent');
      const db = openStateDb(join(dir, 'state', 'agent.db'));
      createUser(db, 'pm', 'manager password 1', 'admin');
      db.close();
      const d = await capture(() => setupCodeCommand.run(['--config', cfg]));
      assert.equal(d.code, 1, 'a set-up box has no code');
      assert.equal(d.out, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
