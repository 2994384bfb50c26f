import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { validateConfig } from '../../../agent/src/config/load.js';
import { uplinkConfigWarnings } from '../../../agent/src/uplinks/config-advice.js';
import { createLab } from '../../lab/lab.js';

const uplink = (targets: unknown[], extra: Record<string, unknown> = {}) => ({
  cellular: { enabled: false },
  uplinks: [{ name: 'wan', interface: 'wan0', kind: 'wired', priority: 1, table: 101, probes: { targets, ...extra } }],
});
const warnings = (doc: unknown) => {
  const r = validateConfig(doc);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return uplinkConfigWarnings(r.config).map((w) => w.message);
};

const icmpOnly = ['9.9.9.9', '1.1.1.1', '8.8.8.8'].map((host) => ({ kind: 'icmp', host }));

describe('probe set advice (warnings, not errors)', () => {
  it('an ICMP-only set is warned about (one protocol)', () => {
    const w = warnings(uplink(icmpOnly));
    assert.ok(
      w.some((m) => /every probe is icmp/.test(m)),
      w.join('\n'),
    );
  });

  it('one target address is warned about, whatever the protocols', () => {
    const w = warnings(
      uplink([
        { kind: 'tcp', host: '1.1.1.1', port: 443 },
        { kind: 'dns', host: '1.1.1.1' },
        { kind: 'icmp', host: '1.1.1.1' },
      ]),
    );
    assert.ok(
      w.some((m) => /every probe goes to 1\.1\.1\.1/.test(m)),
      w.join('\n'),
    );
    assert.ok(!w.some((m) => /every probe is/.test(m)));
  });

  it('no dns target and the old latency key are named', () => {
    const w = warnings(
      uplink(
        [
          { kind: 'tcp', host: '1.1.1.1', port: 443 },
          { kind: 'http', host: '9.9.9.9' },
          { kind: 'icmp', host: '8.8.8.8' },
        ],
        { degradedLatencyMs: 300 },
      ),
    );
    assert.ok(w.some((m) => /no dns target/.test(m)));
    assert.ok(w.some((m) => /old name of slowLatencyMs/.test(m)));
  });

  it('the mixed set the lab and docs use draws no warning', () => {
    const lab = createLab({ prefix: 'adv' });
    assert.deepEqual(warnings(lab.agentConfig()), []);
  });

  it('check-config prints warnings on stderr and still exits 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-adv-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, stringify(uplink(icmpOnly)));
    const r = spawnSync('agent/bin/surgery-edge', ['check-config', f], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: \/uplinks\/0\/probes\/targets: uplink wan: every probe is icmp/);
    assert.match(r.stdout, /ok \(version \d+, 1 uplinks, \d+ warning\(s\)\)/);
  });
});
