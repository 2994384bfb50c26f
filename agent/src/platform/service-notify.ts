import type { CommandRunner } from './command.js';

/**
 * systemd's readiness and watchdog protocol (sd_notify(3)). Node cannot send on the AF_UNIX
 * datagram socket in NOTIFY_SOCKET without a native addon, so this spawns `systemd-notify`, which
 * (systemd >= 246, Debian 12 has 252) waits until the manager has processed the message; the unit
 * sets NotifyAccess=all because the sender is that child, not the main PID.
 */
export interface ServiceNotifier {
  /** True when running under a systemd unit that listens (NOTIFY_SOCKET set). */
  readonly active: boolean;
  /** The interval to ping the watchdog at (half of WatchdogSec), or null when no watchdog is set. */
  readonly watchdogIntervalMs: number | null;
  ready(status: string): Promise<void>;
  status(status: string): Promise<void>;
  watchdog(): Promise<void>;
  stopping(): Promise<void>;
}

export class SystemdNotifier implements ServiceNotifier {
  readonly active: boolean;
  readonly watchdogIntervalMs: number | null;

  constructor(
    private readonly commands: CommandRunner,
    env: NodeJS.ProcessEnv = process.env,
    pid: number = process.pid,
  ) {
    this.active = !!env.NOTIFY_SOCKET;
    const usec = Number(env.WATCHDOG_USEC ?? 0);
    // WATCHDOG_PID names the process the watchdog is meant for; ignore it when inherited by a child.
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === pid;
    this.watchdogIntervalMs = this.active && usec > 0 && forUs ? Math.max(500, Math.floor(usec / 2000)) : null;
  }

  private async send(args: string[]): Promise<void> {
    if (!this.active) return;
    await this.commands.run('systemd-notify', args, { timeoutMs: 5_000 });
  }

  ready(status: string): Promise<void> {
    return this.send(['--ready', `--status=${status}`]);
  }

  status(status: string): Promise<void> {
    return this.send([`--status=${status}`]);
  }

  watchdog(): Promise<void> {
    return this.send(['WATCHDOG=1']);
  }

  stopping(): Promise<void> {
    return this.send(['STOPPING=1']);
  }
}
