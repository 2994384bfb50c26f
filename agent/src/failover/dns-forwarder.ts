import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../../../common/log.js';
import type { UplinkView } from '../../../contract/reports/index.js';

/**
 * The appliance's own DNS forwarder for the LAN (UDP): each query goes out through an uplink whose
 * DNS answers, so the practice keeps resolving while one line's DNS is broken, without moving the
 * rest of its traffic. The query leaves from that uplink's address (its `ip rule` picks its table),
 * to the configured upstream resolvers, else that uplink's own `dns` probe targets.
 * Which uplink: the active one while its DNS is not failing; else the preferred uplink whose DNS
 * is ok; else the active one anyway. No answer from any upstream: SERVFAIL, at once, so a PC's
 * stub resolver does not hang. TCP (truncated answers) is not served: the TC bit goes back as is.
 */
export interface ForwarderDeps {
  uplinks(): UplinkView[];
  active(): string | null;
  upstreams(u: UplinkView): string[];
  log: Logger;
}

export interface ForwarderStats {
  listening: string | null;
  via: string | null;
  answered: number;
  failed: number;
  error?: string;
}

const usable = (u: UplinkView) => u.address !== null && (u.state === 'up' || u.state === 'slow' || u.state === 'degraded');

export function pickUplink(views: UplinkView[], active: string | null): UplinkView | undefined {
  const ok = views.filter(usable);
  const act = ok.find((u) => u.name === active);
  if (act && act.dns !== 'failing') return act;
  return [...ok].sort((a, b) => a.priority - b.priority).find((u) => u.dns === 'ok') ?? act;
}

/** A SERVFAIL reply to `q` (same id and question; QR, RD copied, RA, RCODE 2). */
export function servfail(q: Buffer): Buffer {
  const r = Buffer.from(q);
  r[2] = 0x80 | (q[2]! & 0x01);
  r[3] = 0x80 | 2;
  r.writeUInt16BE(0, 6);
  r.writeUInt16BE(0, 8);
  r.writeUInt16BE(0, 10);
  return r;
}

export class DnsForwarder {
  private sock: Socket | undefined;
  readonly stats: ForwarderStats = { listening: null, via: null, answered: 0, failed: 0 };

  constructor(
    private readonly deps: ForwarderDeps,
    private readonly timeoutMs: number,
  ) {}

  start(listen: string, port: number): Promise<void> {
    return new Promise((resolve) => {
      const sock = createSocket({ type: 'udp4', reuseAddr: true });
      this.sock = sock;
      sock.on('message', (q, rinfo) => {
        if (q.length < 12 || (q[2]! & 0x80) !== 0) return; // not a query
        void this.forward(q).then((r) => {
          try {
            sock.send(r, rinfo.port, rinfo.address);
          } catch {
            /* closed meanwhile */
          }
        });
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        // Reported, never fatal: failover goes on without the forwarder.
        this.stats.error = `cannot listen on ${listen}:${port}: ${e.code ?? e.message}`;
        this.deps.log.error('DNS forwarder not listening', { listen, port, error: e.code ?? e.message });
        this.sock = undefined;
        sock.close();
        resolve();
      });
      sock.bind(port, listen, () => {
        this.stats.listening = `${listen}:${port}`;
        this.deps.log.info('DNS forwarder listening', { listen, port });
        resolve();
      });
    });
  }

  stop(): void {
    this.sock?.close();
    this.sock = undefined;
    this.stats.listening = null;
  }

  /** One query: through the picked uplink to each upstream in turn; SERVFAIL if none answers. */
  async forward(q: Buffer): Promise<Buffer> {
    const u = pickUplink(this.deps.uplinks(), this.deps.active());
    this.stats.via = u?.name ?? null;
    if (u?.address) {
      for (const host of this.deps.upstreams(u)) {
        const r = await ask(q, host, u.address, this.timeoutMs);
        if (r) {
          this.stats.answered++;
          return r;
        }
      }
    }
    this.stats.failed++;
    return servfail(q);
  }
}

/** Send the query from `src` to `host`:53 and wait for the reply with the same id. */
function ask(q: Buffer, host: string, src: string, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const id = q.readUInt16BE(0);
    const done = (r: Buffer | null) => {
      clearTimeout(timer);
      s.removeAllListeners();
      s.on('error', () => {});
      try {
        s.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('error', () => done(null));
    s.on('message', (m, rinfo) => {
      if (rinfo.address === host && m.length >= 12 && m.readUInt16BE(0) === id) done(m);
    });
    s.bind({ address: src, port: 0 }, () => s.send(q, 53, host));
  });
}
