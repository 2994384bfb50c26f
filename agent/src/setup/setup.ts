import { randomBytes } from 'node:crypto';
import type { SetupReport } from '../../../contract/reports/index.js';
import { listUsers } from '../auth/accounts.js';
import type { Capability, Ctx, Health } from '../core/capability.js';
import type { TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { SetupCodeStore } from './code.js';
import { wizardPlugin, type WizardHost } from './wizard.js';

/**
 * First-run set-up (issue 16): until the practice manager has run the wizard on the box's LAN
 * page (/setup), the status page says "Not set up yet". The wizard opens only with the one-time
 * set-up code, which reaches people through the fleet's device page (telemetry, fleetDetails) or
 * the console (`surgery-edge setup-code`), never through the LAN. health().details:
 * { setUp, required, codeIssued, lines }.
 */
export class SetupCapability implements Capability<SetupReport>, WizardHost {
  readonly name = 'setup';
  private ctx!: Ctx;
  private store!: SetupCodeStore;
  private timer: TimerHandle | undefined;
  /** Browsers that entered the right code: session id -> { expires, token (form token) }. */
  readonly sessions = new Map<string, { expires: number; token: string }>();

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    this.store = new SetupCodeStore(ctx.config.paths);
    if (!ctx.config.status.setup.required) return;
    ctx.web.register('setup', wizardPlugin(ctx, this));
    await this.refreshCode();
    // A spent code whose wizard session ran out is replaced, so the fleet always shows one that works.
    this.timer = ctx.clock.setInterval(() => void this.refreshCode(), 60_000);
  }

  async stop(): Promise<void> {
    this.ctx?.clock.clearInterval(this.timer);
    this.timer = undefined;
    this.sessions.clear();
  }

  get codes(): SetupCodeStore {
    return this.store;
  }

  isSetUp(): boolean {
    if (!this.ctx.config.status.setup.required) return true;
    if (this.store.read().done) return true;
    // A box set up before the wizard existed (accounts made with the CLI) is not asked again.
    return listUsers(this.ctx.db).some((u) => u.role === 'admin' && !u.disabledAt);
  }

  private async refreshCode(): Promise<void> {
    try {
      if (this.isSetUp()) return;
      const live = this.liveSession();
      await this.store.ensure(this.ctx.clock.now(), { keepSpent: live });
    } catch (e) {
      this.ctx.log.warn('could not issue a set-up code', describeError(e));
    }
  }

  private liveSession(): boolean {
    const now = this.ctx.clock.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
    return this.sessions.size > 0;
  }

  openSession(): { id: string; token: string } {
    const id = randomBytes(32).toString('base64url');
    const token = randomBytes(24).toString('base64url');
    this.sessions.set(id, { expires: this.ctx.clock.now() + this.ctx.config.status.setup.sessionMs, token });
    return { id, token };
  }

  session(id: string | undefined): { id: string; token: string } | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expires <= this.ctx.clock.now()) {
      this.sessions.delete(id);
      return null;
    }
    return { id, token: s.token };
  }

  /** Set-up finished: the code is spent for good and every wizard session ends. */
  finish(): void {
    this.store.markDone(this.ctx.clock.now());
    this.sessions.clear();
  }

  health(): Health<SetupReport> {
    if (!this.ctx) return { status: 'starting', summary: 'starting' };
    if (!this.ctx.config.status.setup.required)
      return { status: 'disabled', summary: 'first-run set-up not used', details: { setUp: true, required: false, codeIssued: false, lines: [] } };
    const setUp = this.isSetUp();
    const codeIssued = !setUp && this.store.plainCode() !== null;
    return {
      status: setUp ? 'ok' : 'degraded',
      summary: setUp ? 'set up' : 'not set up yet: the practice manager runs "Set up this box"',
      details: {
        setUp,
        required: true,
        codeIssued,
        lines: setUp
          ? ['set up']
          : ['not set up yet', codeIssued ? "set-up code: on the fleet's device page (ask the ICB engineer)" : 'set-up code: being issued'],
      },
    };
  }

  /**
   * Merged into this capability's details only in the MQTT telemetry report to the fleet (the
   * ICB's device page shows it): never in health(), so never on a LAN page, the LAN API,
   * status.json or the log.
   */
  fleetDetails(): Pick<SetupReport, 'setupCode'> {
    if (!this.ctx || this.isSetUp()) return {};
    const code = this.store.plainCode();
    return code ? { setupCode: code } : {};
  }
}
