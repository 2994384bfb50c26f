import { describeError } from '../../../common/errors.js';
import type { CommandOutcome } from '../commands/commander.js';
import { healthProblem, stopReason } from '../rollouts/stop-rules.js';
import { TickingEngine } from '../rollouts/ticking-engine.js';
import { CAMPAIGN_FAILED, type CampaignDeviceRow, type CampaignRow } from '../store/campaign-store.js';
import type { DeviceRow, EventRow } from '../store/types.js';
import { compareVersions } from './plan.js';
import { codeWords, holdReason, isPaused } from './words.js';

/** What the engine needs of the commander (commands/commander.ts): send one command, wait for its answer. */
export interface UpdateSender {
  send(user: string, deviceId: string, command: 'update', args: Record<string, unknown>): Promise<CommandOutcome>;
}

const UPDATE_EVENTS = ['update.progress', 'update.refused', 'update.failed', 'update.committed', 'update.rolled-back'];
/** Device clocks are not ours: an event stamped a little before the command was sent still counts. */
const SKEW_MS = 5 * 60_000;

interface UpdatePayload {
  id?: string;
  version?: string;
  phase?: string;
  bytes?: number;
  total?: number;
  code?: string;
  message?: string;
  reason?: string;
  fromVersion?: string | null;
}

type Verdict = { state: CampaignDeviceRow['state']; detail?: string | null; progress?: string | null } | undefined;

/**
 * Steps software update campaigns: the `update` command to the canaries; once every canary has
 * committed the new version and stayed healthy for the soak, to everyone else, at most maxInFlight
 * boxes at a time. The stop rules are the config rollouts' (rollouts/stop-rules.ts). A box is sent
 * the command only when it is online and, unless the campaign allows 4G, on its primary (wired) link
 * by its latest telemetry; otherwise it waits and goes when it is back. Outside the campaign's update
 * hours (hours.ts; the box reboots seconds after its download) no box is sent it, canary, second wave
 * or a retried claim alike, as all go through sendSome and holdReason; boxes already sent carry on.
 * While a campaign is paused (campaign-store.ts pause/resume) sendSome is not called at all, and the
 * store's claim refuses a paused campaign too: boxes already sent are still followed, the stop rules
 * still apply, the soak runs on, but the move to the second wave waits for the resume.
 *
 * Progress comes from what the fleet already ingests: the command's answer, then the box's update.*
 * events (durable on the box, so they survive its reboot) and its birth's version. As the rollout
 * engine, all state is in the store and every change is compare-and-set, so a restart or a second
 * fleet instance continues without sending anything twice.
 */
export class CampaignEngine extends TickingEngine {
  readonly name = 'campaigns';
  /** campaign:device -> not before (epoch ms): a box that said it is on 4G is not asked again at once. */
  private readonly notBefore = new Map<string, number>();
  sent = 0;

  constructor(private readonly sender: UpdateSender) {
    super('campaign');
  }

  protected override tickMs(): number {
    return this.ctx.config.campaigns.tickMs;
  }

  protected override progress() {
    return { summary: `${this.sent} update command(s) sent`, counts: { sent: this.sent } };
  }

  /** Every campaign that needs a pass. */
  protected override async pass(): Promise<void> {
    for (const c of await this.ctx.store.campaigns.toWatch()) await this.step(c);
  }

  private async step(c: CampaignRow): Promise<void> {
    const store = this.ctx.store.campaigns;
    const now = this.ctx.clock.now();
    const running = c.phase === 'canary' || c.phase === 'all';
    const steps = await store.steps(c.id);
    const devices = await this.ctx.store.devices.getMany(steps.map((s) => s.device_id));
    const events = await this.events(c, steps);
    for (const s of steps) {
      const d = devices.get(s.device_id);
      let v: Verdict;
      if (s.state === 'sent') v = this.judgeSent(c, s, d, events.get(s.device_id) ?? [], now);
      else if (s.state === 'healthy' && running && d) {
        const bad = await healthProblem(this.ctx, d, s.settled_at ?? now, now, this.ctx.config.rollouts.offlineGraceMs, 'updating');
        if (bad) v = { state: 'failed', detail: `unhealthy on ${c.version}: ${bad}` };
      }
      if (!v || (v.state === s.state && v.progress === s.progress)) continue;
      const { state, detail, progress } = v;
      if (
        !(await store.settle(c.id, s.device_id, s.state, state, now, {
          ...(detail !== undefined ? { detail } : {}),
          ...(progress !== undefined ? { progress } : {}),
        }))
      )
        continue;
      if (state !== s.state) {
        const failed = CAMPAIGN_FAILED.includes(state);
        await this.audit(c, `campaign-${state}`, `${c.version}${detail ? `: ${detail}` : ''}`, s.device_id, failed ? 'error' : 'ok');
      }
      Object.assign(s, { state, ...(detail !== undefined ? { detail } : {}), ...(progress !== undefined ? { progress } : {}) });
    }
    if (!running) return;

    const why = stopReason(
      c.phase as 'canary' | 'all',
      steps.map((s) => ({ ...s, failed: CAMPAIGN_FAILED.includes(s.state) })),
      this.ctx.config.rollouts.stopFailPct,
    );
    if (why) {
      const left = steps.filter((s) => s.state === 'pending').length;
      if (await store.setPhase(c.id, [c.phase], 'stopped', `stopped: ${why}`.slice(0, 500), now))
        await this.audit(c, 'campaign-stop', `${why}; ${left} box(es) not sent the update`, null, 'stopped');
      return;
    }
    const paused = isPaused(c);
    if (c.phase === 'canary') {
      const canaries = steps.filter((s) => s.canary);
      if (!paused) await this.sendSome(c, canaries, steps, devices);
      if (!canaries.every((s) => s.state === 'healthy' || s.state === 'skipped')) return;
      if (c.soak_from === null) {
        if (!(await store.startSoak(c.id, now))) return;
        await this.audit(c, 'campaign-soak', `all ${canaries.length} canary box(es) on ${c.version}; soaking ${Math.round(c.soak_ms / 60_000)} min`);
        if (c.soak_ms > 0) return;
      } else if (now - c.soak_from < c.soak_ms) return;
      // The soak is time and runs on while paused; the second wave is sent, so it waits for the resume.
      if (paused) return;
      if (!(await store.setPhase(c.id, ['canary'], 'all', 'canaries healthy: updating the rest', now))) return;
      await this.audit(c, 'campaign-all', `canaries healthy after the soak; ${steps.length - canaries.length} more box(es) to update`);
      c.phase = 'all';
    }
    if (!paused) await this.sendSome(c, steps, steps, devices);
    if (steps.some((s) => s.state === 'pending' || s.state === 'sending' || s.state === 'sent')) return;
    const n = (st: string) => steps.filter((s) => s.state === st).length;
    const msg = `done: ${n('healthy')} healthy on ${c.version}, ${n('rolled-back')} rolled back, ${n('failed')} failed, ${n('skipped')} skipped`;
    if (await store.setPhase(c.id, ['all'], 'done', msg, now)) await this.audit(c, 'campaign-done', msg);
  }

  /** update.* events for this campaign's version, per device, oldest first. */
  private async events(c: CampaignRow, steps: CampaignDeviceRow[]): Promise<Map<string, EventRow[]>> {
    const out = new Map<string, EventRow[]>();
    const watching = new Set(steps.filter((s) => s.state === 'sent').map((s) => s.device_id));
    if (!watching.size) return out;
    const from = Math.min(...steps.filter((s) => s.state === 'sent').map((s) => s.sent_at ?? c.started_at ?? 0)) - SKEW_MS;
    const rows = await this.ctx.store.devices.events(null, from, this.ctx.clock.now() + 86_400_000, UPDATE_EVENTS, 20_000);
    for (const r of rows.reverse()) {
      if (!watching.has(r.device_id)) continue;
      out.set(r.device_id, [...(out.get(r.device_id) ?? []), r]);
    }
    return out;
  }

  private judgeSent(c: CampaignRow, s: CampaignDeviceRow, d: DeviceRow | undefined, evs: EventRow[], now: number): Verdict {
    const since = (s.sent_at ?? now) - SKEW_MS;
    let progress: string | null = s.progress;
    for (const ev of evs) {
      let p: UpdatePayload;
      try {
        p = JSON.parse(ev.payload ?? 'null') as UpdatePayload;
      } catch {
        continue;
      }
      if (!p || p.version !== c.version || ev.at < since || (s.update_id && p.id && p.id !== s.update_id)) continue;
      if (ev.name === 'update.committed') return { state: 'healthy', detail: p.fromVersion ? `from ${p.fromVersion}` : null, progress: null };
      if (ev.name === 'update.rolled-back') return { state: 'rolled-back', detail: p.reason ?? 'the new version failed its health check', progress: null };
      if (ev.name === 'update.refused' && (p.code === 'UPDATE_DOWNGRADE' || p.code === 'UPDATE_WRONG_ARCH'))
        return { state: 'skipped', detail: codeWords(p.code, undefined), progress: null };
      if (ev.name === 'update.refused' && p.code === 'UPDATE_ON_BACKUP_LINK') {
        // The box moved to 4G mid-download and stopped it (nothing armed): queue it again for when it is back.
        this.backOff(c, s.device_id, now);
        return { state: 'pending', detail: codeWords(p.code, undefined), progress: null };
      }
      if (ev.name === 'update.refused' || ev.name === 'update.failed') return { state: 'failed', detail: codeWords(p.code, p.message), progress: null };
      if (ev.name === 'update.progress' && p.phase) {
        const pct = p.phase === 'downloading' || p.phase === 'writing' ? (p.total ? ` ${Math.floor(((p.bytes ?? 0) * 100) / p.total)} %` : '') : '';
        progress = `${p.phase}${pct}`;
      }
    }
    const timeout = this.ctx.config.campaigns.installTimeoutMs;
    if (now - (s.sent_at ?? now) > timeout) {
      // A box on trial already runs the new version, so its birth alone is not a commit; long past
      // the longest trial (the trial guard reboots after 15 min) it is, even if the event was lost.
      if (d?.online && d.version && compareVersions(d.version, c.version) === 0)
        return { state: 'healthy', detail: 'runs the new version (no commit event seen)', progress: null };
      return {
        state: 'failed',
        detail: `no result within ${Math.round(timeout / 60_000)} min of the command${progress ? ` (last seen: ${progress})` : ''}`,
        progress,
      };
    }
    return progress !== s.progress ? { state: 'sent', progress } : undefined;
  }

  /**
   * A box refused or stopped the download because it is on 4G while its last telemetry said wired (or
   * the switch came after): wait claimTimeoutMs before asking again, so a stale view of its uplink
   * does not turn into a command every tick. In memory: after a restart it is asked once more, sooner.
   */
  private backOff(c: CampaignRow, device: string, now: number): void {
    this.notBefore.set(`${c.id}:${device}`, now + this.ctx.config.campaigns.claimTimeoutMs);
  }

  /** Sends the update command to the eligible pending boxes among `pool`, keeping at most maxInFlight mid-update. */
  private async sendSome(c: CampaignRow, pool: CampaignDeviceRow[], all: CampaignDeviceRow[], devices: Map<string, DeviceRow>): Promise<void> {
    const cfg = this.ctx.config.campaigns;
    const now = this.ctx.clock.now();
    let room = cfg.maxInFlight - all.filter((s) => s.state === 'sending' || s.state === 'sent').length;
    const stale = now - cfg.claimTimeoutMs;
    const picked: { s: CampaignDeviceRow; retry: boolean }[] = [];
    for (const s of pool) {
      const retry = s.state === 'sending' && (s.claimed_at ?? 0) < stale;
      if (s.state !== 'pending' && !retry) continue;
      if (!retry && room <= 0) continue;
      if (holdReason(c, devices.get(s.device_id), now, cfg.uplinkFreshMs)) continue;
      const wait = this.notBefore.get(`${c.id}:${s.device_id}`);
      if (wait !== undefined && now < wait) continue;
      this.notBefore.delete(`${c.id}:${s.device_id}`);
      if (!this.ctx.mqtt.connected) return;
      if (!(await this.ctx.store.campaigns.claim(c.id, s.device_id, now, stale))) continue;
      s.state = 'sending';
      s.claimed_at = now;
      if (!retry) room--;
      picked.push({ s, retry });
    }
    await Promise.all(picked.map((p) => this.sendOne(c, p.s, devices.get(p.s.device_id), p.retry)));
  }

  private async sendOne(c: CampaignRow, s: CampaignDeviceRow, d: DeviceRow | undefined, retry: boolean): Promise<void> {
    const store = this.ctx.store.campaigns;
    const move = async (state: CampaignDeviceRow['state'], f: { detail?: string | null; updateId?: string | null; sentAt?: number }) => {
      if (await store.settle(c.id, s.device_id, 'sending', state, this.ctx.clock.now(), { ...f, progress: null })) {
        Object.assign(s, { state, detail: f.detail ?? s.detail, sent_at: f.sentAt ?? s.sent_at });
        if (state !== 'sent') await this.audit(c, `campaign-${state}`, `${c.version}: ${f.detail ?? ''}`, s.device_id, state === 'failed' ? 'error' : 'ok');
      }
    };
    if (d?.version && compareVersions(d.version, c.version) >= 0) return move('skipped', { detail: `already runs ${d.version}` });
    let out: CommandOutcome;
    const who = `fleet (campaign #${c.id})`;
    const args = { url: c.bundle_url, version: c.version };
    try {
      // allowCellular (contract v1.4) only when the campaign allows 4G: a box before v1.4 refuses the
      // unknown field as a bad request, and (never holding downloads itself) is sent it without.
      out = await this.sender.send(who, s.device_id, 'update', c.allow_cellular ? { ...args, allowCellular: true } : args);
      if (c.allow_cellular && out.response?.error?.code === 'BAD_REQUEST') out = await this.sender.send(who, s.device_id, 'update', args);
    } catch (e) {
      this.ctx.log.warn('update command not sent; will retry', { campaign: c.id, device: s.device_id, ...describeError(e) });
      return; // left claimed: retried after claimTimeoutMs
    }
    const sentAt = this.ctx.clock.now();
    if (out.response?.ok) {
      this.sent++;
      const r = out.response.result as { id?: unknown } | undefined;
      return move('sent', { detail: 'accepted: starting', updateId: typeof r?.id === 'string' ? r.id : null, sentAt });
    }
    const err = out.response?.error;
    if (err?.code === 'UPDATE_DOWNGRADE' || err?.code === 'UPDATE_WRONG_ARCH') return move('skipped', { detail: codeWords(err.code, undefined) });
    if (err?.code === 'UPDATE_ON_BACKUP_LINK') {
      this.backOff(c, s.device_id, this.ctx.clock.now());
      return move('pending', { detail: codeWords(err.code, undefined) });
    }
    // After a crash between send and record, the box already has our command: watch it rather than fail it.
    if (err?.code === 'CONFLICT' && retry) return move('sent', { detail: 'already updating (sent before a restart)', sentAt });
    if (err) return move('failed', { detail: codeWords(err.code, err.message) });
    if (out.error?.startsWith('not sent')) return; // broker connection lost: retried after claimTimeoutMs
    this.sent++;
    return move('sent', { detail: 'no answer to the command yet: watching for its progress', sentAt });
  }
}
