import { AppError } from '../../common/errors.js';
import type { CommandRunner, RunOptions, RunResult } from '../../agent/src/platform/command.js';

export interface RecordedCall {
  cmd: string;
  args: string[];
  input?: string;
}

export type FakeHandler = (args: string[], input?: string) => Partial<RunResult> | Promise<Partial<RunResult>>;

/**
 * Test double: records every call and answers from per-command handlers that must mimic the
 * real tool's output format. An unhandled command fails like a missing binary would.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  private readonly handlers = new Map<string, FakeHandler>();

  on(cmd: string, handler: FakeHandler): this {
    this.handlers.set(cmd, handler);
    return this;
  }

  async run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ cmd, args: [...args], ...(opts.input !== undefined ? { input: opts.input } : {}) });
    const h = this.handlers.get(cmd);
    if (!h) throw new AppError('COMMAND_FAILED', `${cmd}: not installed or not on PATH`, { cmd, errno: 'ENOENT' });
    const r = await h([...args], opts.input);
    const result: RunResult = { code: r.code ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '', durationMs: 0 };
    if (result.code !== 0 && !opts.allowFailure)
      throw new AppError('COMMAND_FAILED', `${cmd} ${args.join(' ')}: exit ${result.code}: ${result.stderr.trim()}`, { cmd, code: result.code });
    return result;
  }

  callsTo(cmd: string): RecordedCall[] {
    return this.calls.filter((c) => c.cmd === cmd);
  }
}
