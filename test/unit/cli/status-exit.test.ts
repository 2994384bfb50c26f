import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { STATUS_EXIT, statusExitCode } from '../../../agent/src/cli/status.js';

/** The real CLI against a status file the test writes: what a monitoring script sees. */
function runStatus(caps: Record<string, { status: string; summary: string }>, opts: { ageMs?: number; json?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'se-status-'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, `paths:\n  stateDir: ${join(dir, 'state')}\n  runDir: ${runDir}\n`);
  const snap = { agent: { version: 't', bootId: 'b', pid: 1, deviceId: 'd', at: Date.now() - (opts.ageMs ?? 0) }, capabilities: caps };
  writeFileSync(join(runDir, 'status.json'), JSON.stringify(snap));
  return spawnSync('agent/bin/surgery-edge', ['status', '--config', cfg, ...(opts.json ? ['--json'] : [])], { encoding: 'utf8' });
}

describe('surgery-edge status exit codes', () => {
  it('0 when every capability is ok (disabled counts as ok)', () => {
    const r = runStatus({ failover: { status: 'ok', summary: 'traffic on wan' }, wifi: { status: 'disabled', summary: 'off' } });
    assert.equal(r.status, STATUS_EXIT.ok, r.stderr);
    assert.match(r.stdout, /\[OK {2}\] failover/);
  });

  it('4 when something has failed, also with --json', () => {
    const caps = { failover: { status: 'failed', summary: 'all uplinks down' }, records: { status: 'degraded', summary: 'stale' } };
    const r = runStatus(caps);
    assert.equal(r.status, 4, r.stdout);
    assert.match(r.stdout, /\[FAIL\] failover/);
    assert.equal(runStatus(caps, { json: true }).status, 4);
  });

  it('3 when something needs attention but nothing failed', () => {
    const r = runStatus({ failover: { status: 'degraded', summary: 'traffic on 4g' }, records: { status: 'ok', summary: 'fresh' } });
    assert.equal(r.status, 3, r.stdout);
  });

  it('1 when the snapshot is stale, whatever it says', () => {
    const r = runStatus({ failover: { status: 'ok', summary: 'x' } }, { ageMs: 60_000 });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /stale/);
  });

  it('--help names the codes', () => {
    const r = spawnSync('agent/bin/surgery-edge', ['--help'], { encoding: 'utf8' });
    assert.match(r.stdout, /exit 0 all ok, 3 attention .*4 something failed/);
  });

  it('statusExitCode: starting and stopped count as attention', () => {
    assert.equal(statusExitCode({ capabilities: { a: { status: 'starting', summary: '' } } }, false), 3);
    assert.equal(statusExitCode({ capabilities: { a: { status: 'stopped', summary: '' } } }, false), 3);
    assert.equal(statusExitCode({ capabilities: {} }, false), 0);
  });
});
