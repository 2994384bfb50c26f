import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startFhirServer } from '../../fhir-server/server.js';

const BIN = join(import.meta.dirname, '../../../agent/bin/surgery-edge');

function cli(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

describe('surgery-edge records CLI', () => {
  it('init, sync with progress, wrong-passphrase unlock, unlock, destroy-key', { timeout: 180_000 }, async () => {
    const server = await startFhirServer({ practice: { patients: 2000, clinicians: 5, perClinicianPerDay: 12 } });
    const dir = mkdtempSync(join(tmpdir(), 'c1-cli-'));
    try {
      const cfg = join(dir, 'config.yaml');
      writeFileSync(
        cfg,
        [
          'version: 1',
          `paths: { stateDir: ${dir}/state, runDir: ${dir}/run, root: ${dir}/root }`,
          'records:',
          '  enabled: true',
          `  gpconnect: { baseUrl: '${server.gpcBase}', fromAsid: '200000000359', toAsid: '918999198738' }`,
          `  dayList: { source: fhir, fhirBaseUrl: '${server.r4Base}' }`,
        ].join('\n'),
      );
      const init = await cli(['records', 'init', '-c', cfg], 'cli test passphrase\n');
      assert.equal(init.code, 0, init.stderr);
      const sync = await cli(['records', 'sync', '-c', cfg]);
      assert.equal(sync.code, 0, sync.stderr);
      assert.match(sync.stderr, /sync summaries: \d+\/\d+ patients, 0 errors/);
      assert.match(sync.stderr, /sync done: (\d+)\/\1 patients/);
      const res = JSON.parse(sync.stdout.trim().split('\n').at(-1)!) as { patients: number; errors: number };
      assert.ok(res.patients > 50);
      rmSync(join(dir, 'run'), { recursive: true, force: true }); // a reboot empties the tmpfs run dir
      const bad = await cli(['records', 'unlock', '-c', cfg], 'not the passphrase\n');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /wrong passphrase/);
      const good = await cli(['records', 'unlock', '-c', cfg], 'cli test passphrase\n');
      assert.equal(good.code, 0, good.stderr);
      assert.equal((await cli(['records', 'destroy-key', '-c', cfg])).code, 2, 'refuses without --yes');
      assert.equal((await cli(['records', 'destroy-key', '--yes', '-c', cfg])).code, 0);
      assert.equal(existsSync(join(dir, 'state', 'records.key')) || existsSync(join(dir, 'state', 'records.db')), false);
      const after = await cli(['records', 'unlock', '-c', cfg], 'cli test passphrase\n');
      assert.match(after.stderr, /not provisioned/);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
