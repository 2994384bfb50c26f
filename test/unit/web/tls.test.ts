import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { ensureTls } from '../../../agent/src/web/tls.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { onPath } from '../../lab/tools.js';

/**
 * The generated status-page certificate survives power cuts: written durably, and a pair left broken
 * (empty files after a cut soon after an older version wrote them; found by test/image/update.test.ts
 * in qemu, where the status page then never came up) is set aside and generated again.
 */
describe('status page TLS certificate', { skip: !onPath('openssl') && 'openssl is not installed' }, () => {
  const fresh = () => createTestCtx({ commands: new ProcessRunner() });

  it('generates a usable pair once and reuses it', async () => {
    const ctx = fresh();
    try {
      const a = await ensureTls(ctx);
      assert.equal(a.generated, true);
      assert.ok(new X509Certificate(a.cert).checkPrivateKey(createPrivateKey(a.key)));
      assert.equal(statSync(a.keyPath).mode & 0o777, 0o600);
      const b = await ensureTls(ctx);
      assert.equal(b.generated, false);
      assert.deepEqual(b.cert, a.cert);
      assert.deepEqual(readdirSync(join(ctx.config.paths.stateDir, 'tls')).sort(), ['cert.pem', 'key.pem'], 'no temporary files left');
    } finally {
      ctx.cleanup();
    }
  });

  for (const [what, breakIt] of [
    ['both files empty (a power cut before writeback)', (c: string, k: string) => (writeFileSync(c, ''), writeFileSync(k, ''))],
    ['a truncated key', (_c: string, k: string) => writeFileSync(k, readFileSync(k).subarray(0, 40))],
  ] as const) {
    it(`${what}: set aside and generated again, so the status page still starts`, async () => {
      const ctx = fresh();
      try {
        const a = await ensureTls(ctx);
        breakIt(a.certPath, a.keyPath);
        const b = await ensureTls(ctx);
        assert.equal(b.generated, true);
        assert.ok(new X509Certificate(b.cert).checkPrivateKey(createPrivateKey(b.key)));
        const dir = join(ctx.config.paths.stateDir, 'tls');
        assert.ok(
          readdirSync(dir).some((f) => f.startsWith('cert.pem.broken-')),
          'the broken pair is kept aside, not deleted',
        );
        assert.ok(existsSync(b.keyPath));
      } finally {
        ctx.cleanup();
      }
    });
  }

  it('a key that belongs to another certificate is replaced too', async () => {
    const ctx = fresh();
    const other = fresh();
    try {
      const a = await ensureTls(ctx);
      const o = await ensureTls(other);
      writeFileSync(a.keyPath, o.key);
      const b = await ensureTls(ctx);
      assert.equal(b.generated, true);
      assert.ok(new X509Certificate(b.cert).checkPrivateKey(createPrivateKey(b.key)));
    } finally {
      ctx.cleanup();
      other.cleanup();
    }
  });
});
