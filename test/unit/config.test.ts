import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { configJsonSchema, loadConfig, validateConfig } from '../../agent/src/config/load.js';

describe('config', () => {
  it('embedded defaults are valid and filled in', () => {
    const r = validateConfig({});
    assert.ok(r.ok);
    assert.equal(r.config.failover.holdDownMs, 60_000);
    assert.equal(r.config.failover.maxHoldDownMs, 900_000);
    assert.equal(r.config.failover.maxFailbacksPerHour, 2);
    assert.equal(r.config.paths.stateDir, '/var/lib/surgery-edge');
  });

  it('lists every problem with its path, not just the first', () => {
    const r = validateConfig({
      site: { deviceId: 'bad id with spaces', odsCode: 'x' },
      failover: { holdDownMs: -5, bogus: 1 },
      uplinks: [{ name: 'wan', interface: 'wan0', kind: 'satellite', priority: 1, table: 100 }],
    });
    assert.equal(r.ok, false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    for (const p of ['/site/deviceId', '/site/odsCode', '/failover/holdDownMs', '/failover/bogus', '/uplinks/0/kind'])
      assert.ok(paths.includes(p), `expected a problem at ${p}; got ${paths.join(', ')}`);
  });

  it('rejects duplicate uplink names, tables and cross-references', () => {
    const u = (name: string, table: number, priority: number, kind = 'wired', iface = name) => ({ name, interface: iface, kind, priority, table });
    const r = validateConfig({ uplinks: [u('wan', 100, 1), u('wan', 100, 2, 'wired', 'eth9')], cellular: { uplink: 'lte' } });
    assert.equal(r.ok, false);
    if (r.ok) return;
    const msgs = r.problems.map((p) => `${p.path} ${p.message}`).join('\n');
    assert.match(msgs, /\/uplinks\/1\/name duplicate/);
    assert.match(msgs, /\/uplinks\/1\/table duplicate/);
    assert.match(msgs, /\/cellular\/uplink/);
  });

  it('refuses unsupported versions and non-mappings', () => {
    assert.equal(validateConfig({ version: 99 }).ok, false);
    assert.equal(validateConfig([1, 2]).ok, false);
    assert.equal(validateConfig('text').ok, false);
  });

  it('loadConfig reports YAML syntax errors as CONFIG_INVALID', () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-cfg-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, 'site: {deviceId: [unclosed\n');
    assert.throws(
      () => loadConfig(f),
      (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID',
    );
    assert.throws(
      () => loadConfig(join(dir, 'missing.yaml')),
      (e: Error & { code?: string }) => e.code === 'CONFIG_UNREADABLE',
    );
  });

  it('exports a JSON Schema that names the sections', () => {
    const s = configJsonSchema() as { properties: Record<string, unknown> };
    for (const k of ['site', 'uplinks', 'failover', 'cellular', 'telemetry', 'records', 'status']) assert.ok(k in s.properties, k);
  });

  it('check-config CLI exits 2 and prints every problem path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-cfg-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, 'failover:\n  holdDownMs: fast\nsite:\n  odsCode: "?"\n');
    const r = spawnSync('agent/bin/surgery-edge', ['check-config', f], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\/failover\/holdDownMs/);
    assert.match(r.stderr, /\/site\/odsCode/);
    writeFileSync(f, 'site:\n  odsCode: B81001\n');
    const ok = spawnSync('agent/bin/surgery-edge', ['check-config', f], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
  });
});
