import { randomBytes } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '../../../common/errors.js';
import { CommandResponseSchema, topicFor, type CommandResponse } from '../../../contract/mqtt.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';

const checkResponse = TypeCompiler.Compile(CommandResponseSchema);

/**
 * What the fleet may send; `force-uplink` needs an agent with contract v1 + force-uplink (older ones answer NOT_FOUND).
 * `update` is sent only by update campaigns (campaigns/engine.ts), never from the device page.
 */
export const FLEET_COMMANDS = ['ping', 'drill', 'force-uplink', 'set-config', 'logs', 'backup-now', 'update'] as const;
export type FleetCommand = (typeof FLEET_COMMANDS)[number];

interface Pending {
  deviceId: string;
  resolve: (r: CommandResponse) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface CommandOutcome {
  auditId: number;
  response: CommandResponse | null;
  error: string | null;
}

/**
 * Commands over the contract's MQTT 5 request/response: responseTopic under the device's own
 * `responses/` (the only place its ACL lets it publish), correlationData to pair the answer, message
 * expiry so a command queued for an offline device does not run long after it was meant.
 * Every command is written to the audit log before it is sent and completed with its outcome.
 */
export class Commander implements Component {
  readonly name = 'commands';
  private ctx!: FleetCtx;
  private readonly pending = new Map<string, Pending>();
  sent = 0;
  answered = 0;
  timedOut = 0;

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    // Not shared: the answer must reach the instance that asked.
    ctx.mqtt.subscribe(`${ctx.config.mqtt.prefix}/+/responses/${ctx.instanceId}`, (topic, payload, packet) =>
      this.onResponse(topic, payload, packet.properties?.correlationData),
    );
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  health(): ComponentHealth {
    return {
      status: 'ok',
      summary: `${this.sent} sent, ${this.answered} answered, ${this.timedOut} timed out`,
      details: { pending: this.pending.size, sent: this.sent, answered: this.answered, timedOut: this.timedOut },
    };
  }

  private onResponse(topic: string, payload: Buffer, corr: Buffer | undefined): void {
    if (!corr) return;
    const p = this.pending.get(corr.toString('hex'));
    // A response must come from the device we asked: its topic is its identity (broker ACL).
    if (!p || topic !== `${topicFor(this.ctx.config.mqtt.prefix, p.deviceId, 'responses')}/${this.ctx.instanceId}`) return;
    let raw: unknown;
    try {
      raw = payload.length <= this.ctx.config.mqtt.maxPayloadBytes ? JSON.parse(payload.toString('utf8')) : null;
    } catch {
      raw = null;
    }
    if (!checkResponse.Check(raw)) return;
    this.pending.delete(corr.toString('hex'));
    clearTimeout(p.timer);
    this.answered++;
    p.resolve(raw);
  }

  /** Send one command and wait for its response (or time out); audited either way. */
  async send(user: string, deviceId: string, command: FleetCommand, args: Record<string, unknown> = {}): Promise<CommandOutcome> {
    if (!FLEET_COMMANDS.includes(command)) throw new AppError('BAD_REQUEST', `unknown command ${command}`);
    const { prefix, commandTimeoutMs } = this.ctx.config.mqtt;
    const now = this.ctx.clock.now();
    const auditArgs = command === 'set-config' ? JSON.stringify({ revision: args.revision }) : JSON.stringify(args);
    const auditId = await this.ctx.store.accounts.audit({
      at: now,
      username: user,
      device_id: deviceId,
      action: command,
      args: auditArgs,
      outcome: 'sent',
      detail: null,
    });
    const corr = randomBytes(16);
    const key = corr.toString('hex');
    const expiryS = Math.max(1, Math.ceil(commandTimeoutMs / 1000));
    const answer = new Promise<CommandResponse | null>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        this.timedOut++;
        resolve(null);
      }, commandTimeoutMs);
      this.pending.set(key, { deviceId, resolve, timer });
    });
    try {
      await this.ctx.mqtt.publish(topicFor(prefix, deviceId, 'commands'), JSON.stringify({ command, args, expiresAt: now + commandTimeoutMs }), {
        qos: 1,
        properties: {
          responseTopic: `${topicFor(prefix, deviceId, 'responses')}/${this.ctx.instanceId}`,
          correlationData: corr,
          messageExpiryInterval: expiryS,
          contentType: 'application/json',
        },
      });
      this.sent++;
    } catch (e) {
      const p = this.pending.get(key);
      if (p) clearTimeout(p.timer);
      this.pending.delete(key);
      const error = `not sent: ${(e as Error).message}`;
      await this.ctx.store.accounts.finishAudit(auditId, 'failed', error);
      return { auditId, response: null, error };
    }
    const response = await answer;
    if (!response) {
      await this.ctx.store.accounts.finishAudit(auditId, 'timeout', `no response within ${commandTimeoutMs} ms`);
      return { auditId, response: null, error: 'no response (device offline?)' };
    }
    const detail = response.ok ? JSON.stringify(response.result ?? null).slice(0, 1000) : `${response.error?.code}: ${response.error?.message}`.slice(0, 1000);
    await this.ctx.store.accounts.finishAudit(auditId, response.ok ? 'ok' : 'error', detail);
    return { auditId, response, error: response.ok ? null : detail };
  }
}
