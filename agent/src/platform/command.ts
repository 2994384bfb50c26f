import { spawn } from 'node:child_process';
import { AppError } from '../../../common/errors.js';

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
  /** Return a non-zero exit as a result instead of throwing COMMAND_FAILED. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Every external program the agent runs (ip, nft, conntrack, mmcli, ...) goes through this. */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** Runs programs without a shell (no quoting bugs, no injection), with a timeout and bounded output. */
export class ProcessRunner implements CommandRunner {
  constructor(private readonly defaultTimeoutMs = 10_000) {}

  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const started = performance.now();
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      let child;
      try {
        child = spawn(cmd, args, { env: opts.env ? { ...process.env, ...opts.env } : process.env, stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (e) {
        reject(new AppError('COMMAND_FAILED', `${cmd}: could not start (${(e as Error).message})`, { cmd }));
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      const collect = (arr: Buffer[]) => (b: Buffer) => {
        size += b.length;
        if (size <= MAX_OUTPUT) arr.push(b);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = e.code === 'ENOENT' ? 'not installed or not on PATH' : e.message;
        reject(new AppError('COMMAND_FAILED', `${cmd}: ${why}`, { cmd, errno: e.code }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const result: RunResult = {
          code: code ?? -1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          durationMs: performance.now() - started,
        };
        if (timedOut) {
          reject(new AppError('COMMAND_TIMEOUT', `${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms`, { cmd }));
        } else if (result.code !== 0 && !opts.allowFailure) {
          reject(
            new AppError('COMMAND_FAILED', `${cmd} ${args.join(' ')}: exit ${result.code}: ${result.stderr.trim().slice(0, 300)}`, {
              cmd,
              code: result.code,
            }),
          );
        } else resolve(result);
      });
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input ?? '');
    });
  }
}
