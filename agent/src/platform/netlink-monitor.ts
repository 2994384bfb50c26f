import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LinkEvent {
  ifname: string;
  carrier: boolean;
  deleted: boolean;
}

/** Carrier/link changes from the kernel as they happen. */
export interface LinkMonitor {
  start(onEvent: (e: LinkEvent) => void, onError: (msg: string) => void): void;
  stop(): void;
}

/**
 * `3: wan0@peer0: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 1500 ... state LOWERLAYERDOWN ...`
 * (one line per event with `ip -o monitor link`; `Deleted ` prefix when the link goes away).
 */
export function parseMonitorLine(line: string): LinkEvent | null {
  const m = /^(Deleted )?\d+: ([^:@\s]+)(?:@[^:]+)?: <([^>]*)>/.exec(line.trim());
  if (!m) return null;
  const flags = m[3]!.split(',');
  const deleted = Boolean(m[1]);
  return { ifname: m[2]!, deleted, carrier: !deleted && flags.includes('LOWER_UP') && !flags.includes('NO-CARRIER') };
}

/** Long-running `ip -o monitor link`, restarted (after a pause) if it dies. */
export class IpLinkMonitor implements LinkMonitor {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  start(onEvent: (e: LinkEvent) => void, onError: (msg: string) => void): void {
    this.stopped = false;
    const child = spawn('ip', ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const e = parseMonitorLine(l);
      if (e) onEvent(e);
    });
    child.on('error', (e) => onError(`ip monitor: ${e.message}`));
    child.on('exit', (code) => {
      if (this.stopped) return;
      onError(`ip monitor exited (${code}); restarting in 2 s`);
      this.restartTimer = setTimeout(() => this.start(onEvent, onError), 2000);
      this.restartTimer.unref();
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}
