import { lookup } from 'node:dns/promises';
import type { Ctx } from '../core/capability.js';
import { describeError } from '../../../common/errors.js';
import { PolicyApplier, renderPolicy, resolveDestinations, type Resolver } from './policy.js';

const defaultResolver: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

export interface PolicyState {
  applied: boolean;
  lastError: string | null;
  /** Critical destinations that currently have addresses in the table. */
  critical: number;
}

/**
 * Keeps the 4G policy table installed: renders it from config (re-resolving host names when asked),
 * applies it when it changed or went missing, and records why it is not in place. Never throws:
 * a failing `nft` is logged once per distinct error and retried on the next poll.
 */
export class PolicyKeeper {
  private readonly applier: PolicyApplier;
  private readonly cache = new Map<string, string[]>();
  private rendered: string | null = null;
  state: PolicyState;

  constructor(
    private readonly ctx: Ctx,
    private readonly iface: () => string,
    private readonly resolve: Resolver = defaultResolver,
  ) {
    this.applier = new PolicyApplier(ctx.platform.commands);
    this.state = { applied: false, lastError: ctx.config.cellular.policy.enabled ? 'pending' : 'disabled in config', critical: 0 };
  }

  /** A cellular interface is configured and we may change kernel state: the policy must be in. */
  get applicable(): boolean {
    const cfg = this.ctx.config.cellular;
    return cfg.policy.enabled && this.ctx.platform.privileged && (Boolean(cfg.interface) || this.ctx.config.uplinks.some((u) => u.name === cfg.uplink));
  }

  async keep(reresolve: boolean): Promise<void> {
    const cfg = this.ctx.config.cellular;
    const pc = cfg.policy;
    if (!cfg.interface && !this.ctx.config.uplinks.some((u) => u.name === cfg.uplink)) {
      // No cellular interface configured: never guess one and install rules on a host we do not own.
      this.state = { applied: false, lastError: 'no cellular uplink configured', critical: pc.critical.length };
      return;
    }
    if (!this.ctx.platform.privileged) {
      this.state = { applied: false, lastError: 'not privileged: 4G policy not installed', critical: pc.critical.length };
      return;
    }
    try {
      if (reresolve || !this.rendered) {
        const { resolved, failures } = await resolveDestinations(pc.critical, this.resolve, this.cache);
        if (failures.length) this.ctx.log.warn('cellular: critical destinations did not resolve; using last known addresses', { names: failures });
        this.rendered = renderPolicy({
          iface: this.iface(),
          nonCritical: pc.nonCritical,
          rateLimitKbytes: pc.rateLimitKbytes,
          allowDns: pc.allowDns,
          critical: resolved,
          voice: pc.voice,
        });
        this.state.critical = resolved.filter((d) => d.addrs.length).length;
      }
      if (await this.applier.apply(this.rendered))
        this.ctx.log.info('cellular: 4G policy applied', { nonCritical: pc.nonCritical, critical: this.state.critical });
      this.state = { ...this.state, applied: true, lastError: null };
    } catch (e) {
      const d = describeError(e);
      if (this.state.lastError !== d.message) this.ctx.log.error('cellular: 4G policy not applied', d);
      this.state = { ...this.state, applied: false, lastError: d.message };
    }
  }
}
