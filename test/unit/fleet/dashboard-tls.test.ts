import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateFleetConfig } from '../../../fleet/src/config.js';
import { dashboardTls } from '../../../fleet/src/web/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-tls-'));
const cfg = (tls: Record<string, unknown>, sub = 'a') => {
  const r = validateFleetConfig({ dataDir: join(dir, sub), http: { tls } });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
};

describe('dashboard certificate (http.tls)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('off by default; self-signed generated once and reused; a configured pair used as given; half a pair refused', () => {
    assert.equal(dashboardTls(cfg({})), undefined);
    const first = dashboardTls(cfg({ enabled: true }))!;
    assert.equal(first.selfSigned, true);
    assert.deepEqual(dashboardTls(cfg({ enabled: true }))!.cert, first.cert, 'the same certificate after a restart');
    writeFileSync(join(dir, 'c.pem'), first.cert);
    writeFileSync(join(dir, 'k.pem'), first.key);
    const given = dashboardTls(cfg({ enabled: true, certPath: join(dir, 'c.pem'), keyPath: join(dir, 'k.pem') }, 'b'))!;
    assert.equal(given.selfSigned, false);
    assert.equal(given.certPath, join(dir, 'c.pem'));
    assert.throws(() => dashboardTls(cfg({ enabled: true, certPath: join(dir, 'c.pem') }, 'c')), /needs both certPath and keyPath/);
    assert.throws(
      () => dashboardTls(cfg({ enabled: true, certPath: join(dir, 'nope.pem'), keyPath: join(dir, 'k.pem') }, 'c')),
      /cannot read certificate or key/,
    );
  });
});
