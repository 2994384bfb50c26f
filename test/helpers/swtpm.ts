import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why TPM tests cannot run here (swtpm or tpm2-tools missing), or false. */
export function swtpmMissing(): string | false {
  const missing = ['swtpm', 'tpm2_createprimary'].find((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return missing ? `${missing} not installed (apt-get install swtpm tpm2-tools)` : false;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      // swtpm serves one client at a time: the probe must be closed (not half-closed by end())
      // before a caller's synchronous spawn blocks this event loop, or the tpm2 tool waits behind it.
      const s = createConnection({ port, host: '127.0.0.1' }, () => {
        s.once('close', () => r(true));
        s.destroy();
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`swtpm did not listen on ${port}`);
}

/**
 * A software TPM 2.0 (swtpm, libtpms) on a loopback port: the same TPM commands as a real chip,
 * its own seeds, so a second Swtpm is "another box's TPM". `tcti` goes to TPM2TOOLS_TCTI.
 */
export class Swtpm {
  tcti = '';
  private proc: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'se-swtpm-'));

  async start(): Promise<this> {
    const port = 24000 + Math.floor(Math.random() * 2000) * 2;
    this.proc = spawn(
      'swtpm',
      [
        'socket',
        '--tpmstate',
        `dir=${this.dir}`,
        '--tpm2',
        '--server',
        `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
        '--flags',
        'not-need-init,startup-clear',
      ],
      { stdio: 'ignore' },
    );
    await waitPort(port);
    this.tcti = `swtpm:host=127.0.0.1,port=${port}`;
    return this;
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    this.proc = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
