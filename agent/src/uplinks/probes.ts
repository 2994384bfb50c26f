import { createSocket } from 'node:dgram';
import { http } from '../../../common/node-builtins.js';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Static } from '@sinclair/typebox';
import type { CommandRunner } from '../platform/command.js';
import type { ProbeTarget } from './config-schema.js';

export type Target = Static<typeof ProbeTarget>;

export interface ProbeResult {
  ok: boolean;
  rttMs: number;
  error?: string;
  /** Timed out, but the prober still listens for a late answer and will call `onLate` once. */
  pending?: boolean;
}

/**
 * Keep listening after the timeout: the first result still comes at `timeoutMs` (a blackhole is
 * detected as fast as ever), and the answer (or the final loss) up to `graceMs` later goes to
 * `onLate`. An answer that is merely late is latency, not loss (issue 20: a +500 ms line showed
 * "25% loss" because the HTTP probe's two round trips outlasted the timeout).
 */
export interface LateAnswer {
  graceMs: number;
  onLate(r: ProbeResult): void;
}

/** Where a probe leaves from: the uplink's own address (an `ip rule from <addr>` selects its table). */
export interface ProbeSource {
  address: string;
  iface: string;
}

export interface Prober {
  probe(target: Target, src: ProbeSource, timeoutMs: number, late?: LateAnswer): Promise<ProbeResult>;
}

const fail = (started: number, error: string): ProbeResult => ({ ok: false, rttMs: performance.now() - started, error });

/**
 * Real probes, in-process where possible (TCP, HTTP, DNS cost a socket, not a process: this runs
 * forever on a Pi). ICMP needs a raw socket, so it spawns `ping -I <src>`.
 * Binding to the source address (not only the device) is what makes the per-uplink `ip rule`
 * route the probe out of that uplink even while it is the standby.
 */
export class NetProber implements Prober {
  constructor(private readonly commands: CommandRunner) {}

  probe(target: Target, src: ProbeSource, timeoutMs: number, late?: LateAnswer): Promise<ProbeResult> {
    if (!late || late.graceMs <= 0) return this.raw(target, src, timeoutMs);
    const started = performance.now();
    const final = this.raw(target, src, timeoutMs + late.graceMs);
    return new Promise((resolve) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        resolve({ ok: false, rttMs: performance.now() - started, error: 'timeout', pending: true });
      }, timeoutMs);
      void final.then((r) => {
        if (!timedOut) {
          clearTimeout(timer);
          resolve(r);
        } else late.onLate(r);
      });
    });
  }

  private raw(target: Target, src: ProbeSource, timeoutMs: number): Promise<ProbeResult> {
    switch (target.kind) {
      case 'tcp':
        return this.tcp(target, src, timeoutMs);
      case 'http':
        return this.http(target, src, timeoutMs);
      case 'dns':
        return this.dns(target, src, timeoutMs);
      case 'icmp':
        return this.icmp(target, src, timeoutMs);
    }
  }

  private tcp(t: Target, src: ProbeSource, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const sock = connect({ host: t.host, port: t.port ?? 443, localAddress: src.address });
      const timer = setTimeout(() => done(fail(started, 'timeout')), timeoutMs);
      const done = (r: ProbeResult) => {
        clearTimeout(timer);
        sock.removeAllListeners();
        sock.on('error', () => {});
        sock.destroy();
        resolve(r);
      };
      sock.once('connect', () => done({ ok: true, rttMs: performance.now() - started }));
      sock.once('error', (e: NodeJS.ErrnoException) => done(fail(started, e.code ?? e.message)));
    });
  }

  private http(t: Target, src: ProbeSource, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    const https = t.port === 443;
    const expect = t.expectStatus ?? 204;
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(r);
      };
      const req = (https ? httpsRequest : http.request)(
        { host: t.host, port: t.port ?? 80, path: t.path ?? '/', method: 'GET', localAddress: src.address, agent: false, rejectUnauthorized: false },
        (res) => {
          res.resume();
          const ok = res.statusCode === expect;
          done(ok ? { ok, rttMs: performance.now() - started } : fail(started, `status ${res.statusCode} != ${expect}`));
        },
      );
      const timer = setTimeout(() => done(fail(started, 'timeout')), timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => done(fail(started, e.code ?? e.message)));
      req.end();
    });
  }

  private dns(t: Target, src: ProbeSource, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    const id = Math.floor(Math.random() * 0xffff);
    const query = encodeDnsQuery(id, t.query ?? 'nhs.uk');
    return new Promise((resolve) => {
      const sock = createSocket('udp4');
      const timer = setTimeout(() => done(fail(started, 'timeout')), timeoutMs);
      const done = (r: ProbeResult) => {
        clearTimeout(timer);
        sock.removeAllListeners();
        sock.on('error', () => {});
        try {
          sock.close();
        } catch {
          /* already closed */
        }
        resolve(r);
      };
      sock.on('error', (e: NodeJS.ErrnoException) => done(fail(started, e.code ?? e.message)));
      // Any well-formed answer with our id proves the path (NXDOMAIN included): we test the
      // uplink, not the resolver's zone data.
      sock.on('message', (msg) => {
        if (msg.length >= 12 && msg.readUInt16BE(0) === id && (msg[2]! & 0x80) !== 0) done({ ok: true, rttMs: performance.now() - started });
      });
      sock.bind({ address: src.address, port: 0 }, () => sock.send(query, t.port ?? 53, t.host));
    });
  }

  private async icmp(t: Target, src: ProbeSource, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    const secs = Math.max(0.05, timeoutMs / 1000).toFixed(2);
    try {
      const r = await this.commands.run('ping', ['-n', '-q', '-c', '1', '-W', secs, '-I', src.address, t.host], {
        allowFailure: true,
        timeoutMs: timeoutMs + 1000,
      });
      if (r.code !== 0) return fail(started, 'no reply');
      return { ok: true, rttMs: parsePingRtt(r.stdout) ?? performance.now() - started };
    } catch (e) {
      return fail(started, (e as Error).message);
    }
  }
}

/** `rtt min/avg/max/mdev = 0.041/0.041/0.041/0.000 ms` -> 0.041 (iputils ping -q summary line). */
export function parsePingRtt(stdout: string): number | null {
  const m = /= ([\d.]+)\/([\d.]+)\//.exec(stdout);
  return m ? Number(m[2]) : null;
}

/** A minimal RFC 1035 query: header, one question (QTYPE A, QCLASS IN), recursion desired. */
export function encodeDnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').filter(Boolean);
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1])]);
}
