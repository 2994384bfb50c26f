import type { Ctx } from '../core/capability.js';
import { AppError, describeError } from '../../../common/errors.js';
import { CommandArgs, CommandRequestSchema, schemaProblems, type CommandName, type CommandResponse } from '../../../contract/mqtt.js';
import { judgeDesired } from './remote-config.js';

/** What a command handler may ask of the telemetry capability (kept narrow for unit tests). */
export interface CommandHost {
  ctx: Ctx;
  /** Record the desired-config outcome (reported document) and, when valid, apply it. */
  handleDesired(raw: unknown, via: 'command'): Promise<CommandResponse['result']>;
  /** Run after the response is on its way (reboot must answer first). */
  after(fn: () => Promise<void>): void;
}

const MAX_LOG_BYTES = 128 * 1024;

const handlers: Record<CommandName, (host: CommandHost, args: Record<string, unknown>) => Promise<unknown>> = {
  ping: async ({ ctx }) => ({ pong: true, bootId: ctx.bootId, version: ctx.version, at: ctx.clock.now() }),
  reboot: async (host, args) => {
    const reason = typeof args.reason === 'string' ? args.reason : 'remote command';
    host.after(() => host.ctx.control.reboot(`remote: ${reason}`));
    return { rebooting: true };
  },
  drill: async ({ ctx }) => {
    const drills = ctx.capabilities.get('drills');
    // A stand-in registered under the name (tests, a plug-in) may lack the operation: say so, do not crash.
    if (typeof drills?.runNow !== 'function') throw new AppError('UNAVAILABLE', 'drills capability is not running on this device');
    return drills.runNow('remote');
  },
  logs: async ({ ctx }, args) => {
    const limit = typeof args.limit === 'number' ? args.limit : 100;
    const level = (args.level as 'debug' | 'info' | 'warn' | 'error' | undefined) ?? 'info';
    // Keep the response well under the broker's and the 4G link's comfort: newest entries win.
    const entries = ctx.logs.recent(limit, level);
    let size = entries.reduce((a, e) => a + JSON.stringify(e).length + 1, 0);
    while (entries.length && size > MAX_LOG_BYTES) size -= JSON.stringify(entries.shift()).length + 1;
    return { entries };
  },
  'set-config': async (host, args) => host.handleDesired(args, 'command'),
  // What the status page's POST /api/actions/force calls; failover.force validates the name (NOT_FOUND).
  'force-uplink': async ({ ctx }, args) => {
    const fo = ctx.capabilities.get('failover');
    if (typeof fo?.force !== 'function') throw new AppError('UNAVAILABLE', 'failover capability is not running on this device');
    const uplink = (args.uplink as string | null) ?? null;
    const minutes = typeof args.minutes === 'number' ? args.minutes : 60;
    fo.force(uplink, minutes * 60_000);
    ctx.log.warn('uplink forced by remote command', { uplink, minutes });
    return { uplink, until: uplink ? ctx.clock.now() + minutes * 60_000 : null };
  },
  // Answers at once ({accepted, alreadyRunning, forced, link}); CONFLICT when the link policy holds it back.
  'backup-now': async ({ ctx }, args) => {
    const backup = ctx.capabilities.get('backup');
    if (typeof backup?.request !== 'function') throw new AppError('UNAVAILABLE', 'backup capability is not running on this device');
    // The real capability also hands back the run (`done`); the answer does not wait for it.
    const r = backup.request({ force: args.force === true, by: 'fleet' }) as ReturnType<typeof backup.request> & { done?: Promise<unknown> };
    const { done, ...accepted } = r;
    done?.catch(() => {});
    return accepted;
  },
  // Answers at once ({accepted, id, version, slot}); progress and the outcome follow as update.* events.
  update: async ({ ctx }, args) => {
    const updater = ctx.capabilities.get('update');
    if (typeof updater?.request !== 'function') throw new AppError('UNAVAILABLE', 'update capability is not running on this device');
    return updater.request({ url: args.url as string, version: args.version as string, allowCellular: args.allowCellular === true });
  },
};

/**
 * Parse, validate and run one command. Every failure becomes an error response with a stable
 * code (BAD_REQUEST, NOT_FOUND, UNAVAILABLE, ...); nothing here throws.
 */
export async function runCommand(host: CommandHost, payload: Buffer, maxBytes: number, expiredByBroker: boolean): Promise<CommandResponse> {
  const at = () => host.ctx.clock.now();
  const fail = (command: string | null, code: string, message: string, details?: unknown): CommandResponse => ({
    ok: false,
    command,
    error: details === undefined ? { code, message } : { code, message, details },
    at: at(),
  });
  if (payload.length > maxBytes) return fail(null, 'BAD_REQUEST', `payload of ${payload.length} bytes exceeds ${maxBytes}`);
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return fail(null, 'BAD_REQUEST', 'payload is not JSON');
  }
  const problems = schemaProblems(CommandRequestSchema, raw);
  const name = typeof (raw as { command?: unknown } | null)?.command === 'string' ? (raw as { command: string }).command.slice(0, 64) : null;
  if (problems.length) return fail(name, 'BAD_REQUEST', 'malformed command', problems);
  const req = raw as { command: string; args?: Record<string, unknown>; expiresAt?: number };
  if (expiredByBroker || (req.expiresAt !== undefined && req.expiresAt < at())) return fail(name, 'BAD_REQUEST', 'command expired');
  if (!Object.hasOwn(CommandArgs, req.command)) return fail(name, 'NOT_FOUND', `unknown command ${JSON.stringify(name)}`);
  const command = req.command as CommandName;
  const args = req.args ?? {};
  const argProblems = schemaProblems(CommandArgs[command], args);
  if (argProblems.length) return fail(command, 'BAD_REQUEST', 'invalid args', argProblems);
  try {
    const result = await handlers[command](host, args);
    return { ok: true, command, result, at: at() };
  } catch (e) {
    const d = describeError(e);
    return fail(command, d.code, d.message);
  }
}
