import assert from 'node:assert/strict';
import { reported } from '../../helpers/reports.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { ProcessRunner } from '../../../agent/src/platform/command.js';
import { TpmSealer } from '../../../agent/src/platform/tpm.js';
import { RecordsCapability } from '../../../agent/src/records/records.js';
import { recordsPaths } from '../../../agent/src/records/sources.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { Swtpm, swtpmMissing } from '../../helpers/swtpm.js';

const skip = swtpmMissing();

describe('records key sealed to a TPM (swtpm simulator)', { skip }, () => {
  it('the capability unlocks itself after a reboot via the TPM, and needs the passphrase when the boot chain changed', { timeout: 120_000 }, async () => {
    const tpm = await new Swtpm().start();
    const tcti = tpm.tcti;
    const ctx = createTestCtx({
      commands: new ProcessRunner(30_000),
      config: {
        records: {
          enabled: true,
          tpmTcti: tcti,
          gpconnect: { baseUrl: 'http://127.0.0.1:9/gpc', fromAsid: '1', toAsid: '2' },
          dayList: { fhirBaseUrl: 'http://127.0.0.1:9/r4' },
        },
      },
    });
    const locked = (c: RecordsCapability) => (reported(c).details as { locked: boolean }).locked;
    const reboot = async (c: RecordsCapability) => {
      await c.stop();
      rmSync(recordsPaths(ctx.config).runtimeKey, { force: true });
      const next = new RecordsCapability();
      await next.start(ctx);
      return next;
    };
    try {
      let cap = new RecordsCapability();
      await cap.start(ctx);
      await cap.provision('tpm test passphrase');
      assert.match((reported(cap).details as { lines: string[] }).lines.join('\n'), /TPM: key sealed/);
      cap = await reboot(cap);
      assert.equal(locked(cap), false, 'unsealed by the TPM without a passphrase');
      await new ProcessRunner().run('tpm2_pcrextend', [`4:sha256=${'00'.repeat(31)}02`], { env: { TPM2TOOLS_TCTI: tcti } });
      cap = await reboot(cap);
      assert.equal(locked(cap), true, 'changed boot chain: TPM refuses, cache locked');
      await cap.unlock('tpm test passphrase');
      cap = await reboot(cap);
      assert.equal(locked(cap), false, 're-sealed to the new PCRs on passphrase unlock');
      cap.destroyKey();
      assert.equal(new TpmSealer({ runner: new ProcessRunner(), blobDir: ctx.config.paths.stateDir, workDir: ctx.dir, tcti }).isSealed(), false);
      await cap.stop();
    } finally {
      tpm.stop();
      ctx.cleanup();
    }
  });

  it('seals and unseals the data key; a changed PCR refuses; the key is never in the blobs', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1-tpm-'));
    const tpm = await new Swtpm().start();
    try {
      const tcti = tpm.tcti;
      const runner = new ProcessRunner(30_000);
      const sealer = new TpmSealer({ runner, blobDir: join(dir, 'state'), workDir: join(dir, 'run'), tcti });
      const key = randomBytes(32);
      assert.equal(sealer.isSealed(), false);
      await sealer.seal(key);
      assert.equal(sealer.isSealed(), true);
      for (const f of [sealer.pubPath, sealer.privPath]) {
        const b = readFileSync(f);
        assert.ok(!b.includes(key) && !b.includes(key.toString('hex')), 'sealed blob does not contain the key');
      }
      assert.deepEqual(await sealer.unseal(), key);
      assert.deepEqual(await sealer.unseal(), key, 'unseal is repeatable (contexts flushed)');
      // A changed boot chain (PCR 7 extended) fails the policy.
      await runner.run('tpm2_pcrextend', [`7:sha256=${'00'.repeat(31)}01`], { env: { TPM2TOOLS_TCTI: tcti } });
      await assert.rejects(sealer.unseal(), (e) => isAppError(e, 'UNAUTHORIZED'));
      sealer.destroy();
      assert.equal(sealer.isSealed(), false);
      await assert.rejects(sealer.unseal(), (e) => isAppError(e, 'NOT_FOUND'));
    } finally {
      tpm.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
