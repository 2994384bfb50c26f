import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EventBus } from '../../agent/src/core/bus.js';
import { migrate } from '../../agent/src/core/db.js';
import { writeFileAtomic, makeHostPath } from '../../agent/src/core/fs.js';
import { ulid } from '../../agent/src/core/ids.js';
import { Backoff, retry } from '../../common/retry.js';
import { ProcessRunner } from '../../agent/src/platform/command.js';
import { createTestCtx } from '../helpers/ctx.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRunner } from '../helpers/fake-runner.js';

describe('core', () => {
  it('bus isolates a throwing listener and still delivers to the others', () => {
    const bus = new EventBus();
    const got: string[] = [];
    bus.on('agent.stopping', () => {
      throw new Error('boom');
    });
    bus.on('agent.stopping', (p) => got.push(p.reason));
    bus.emit('agent.stopping', { reason: 'x' });
    assert.deepEqual(got, ['x']);
  });

  it('migrations are numbered per owner and applied once', () => {
    const ctx = createTestCtx();
    try {
      const m = [
        { version: 1, up: 'CREATE TABLE a (x INTEGER)' },
        { version: 2, up: 'ALTER TABLE a ADD COLUMN y TEXT' },
      ];
      assert.equal(migrate(ctx.db, 'demo', m), 2);
      assert.equal(migrate(ctx.db, 'demo', m), 2);
      ctx.db.prepare('INSERT INTO a (x, y) VALUES (1, ?)').run('z');
      assert.equal(migrate(ctx.db, 'other', [{ version: 1, up: 'CREATE TABLE b (x)' }]), 1);
      const rows = ctx.db.prepare('SELECT owner, version FROM schema_migrations ORDER BY owner, version').all();
      assert.deepEqual(rows, [
        { owner: 'demo', version: 1 },
        { owner: 'demo', version: 2 },
        { owner: 'other', version: 1 },
      ]);
      assert.equal(ctx.db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      ctx.cleanup();
    }
  });

  it('a failing migration leaves no partial state', () => {
    const ctx = createTestCtx();
    try {
      assert.throws(() => migrate(ctx.db, 'bad', [{ version: 1, up: 'CREATE TABLE c (x); THIS IS NOT SQL' }]));
      assert.equal((ctx.db.prepare("SELECT count(*) n FROM sqlite_master WHERE name='c'").get() as { n: number }).n, 0);
    } finally {
      ctx.cleanup();
    }
  });

  it('writeFileAtomic replaces whole files and hostPath stays under the root', () => {
    const ctx = createTestCtx();
    try {
      const p = join(ctx.dir, 'a', 'b.txt');
      writeFileAtomic(p, 'one');
      writeFileAtomic(p, 'two');
      assert.equal(readFileSync(p, 'utf8'), 'two');
      assert.equal(existsSync(`${p}.tmp-${process.pid}`), false);
      const hp = makeHostPath('/srv/fixture');
      assert.equal(hp('/sys/class/leds'), '/srv/fixture/sys/class/leds');
      assert.equal(hp('../../etc/passwd'), '/srv/fixture/etc/passwd');
      assert.equal(makeHostPath('/')('/sys'), '/sys');
    } finally {
      ctx.cleanup();
    }
  });

  it('ulids sort in creation order even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, 1000);
    assert.ok(ulid(1_700_000_000_001) > ids.at(-1)!);
  });

  it('backoff grows exponentially, is capped and jittered', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0, random: () => 0.5 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [1000, 2000, 4000, 8000]);
    for (let i = 0; i < 10; i++) b.next();
    assert.equal(b.next(), 60_000);
    const j = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 1, random: () => 0.25 });
    assert.equal(j.next(), 250);
  });

  it('retry gives up after the configured attempts, sleeping on the clock', async () => {
    const clock = new FakeClock();
    let n = 0;
    const p = retry(
      async () => {
        n++;
        throw new Error('nope');
      },
      { retries: 3, initialMs: 100, maxMs: 1000, clock },
    );
    const assertion = assert.rejects(p, /nope/);
    await clock.advance(10_000);
    await assertion;
    assert.equal(n, 4);
  });

  it('ProcessRunner returns output, reports failures and timeouts with codes', async () => {
    const r = new ProcessRunner();
    assert.equal((await r.run('sh', ['-c', 'echo hi'])).stdout, 'hi\n');
    await assert.rejects(r.run('sh', ['-c', 'echo bad >&2; exit 3']), (e: Error & { code?: string }) => e.code === 'COMMAND_FAILED' && /bad/.test(e.message));
    await assert.rejects(r.run('definitely-not-a-binary', []), /not installed/);
    await assert.rejects(r.run('sleep', ['5'], { timeoutMs: 100 }), (e: Error & { code?: string }) => e.code === 'COMMAND_TIMEOUT');
    assert.equal((await r.run('sh', ['-c', 'exit 4'], { allowFailure: true })).code, 4);
  });

  it('FakeRunner records calls and fails unknown commands like a missing binary', async () => {
    const f = new FakeRunner().on('ip', () => ({ stdout: '[]' }));
    assert.equal((await f.run('ip', ['-j', 'route'])).stdout, '[]');
    await assert.rejects(f.run('nft', ['list', 'ruleset']), /not installed/);
    assert.deepEqual(f.callsTo('ip')[0]?.args, ['-j', 'route']);
  });
});
