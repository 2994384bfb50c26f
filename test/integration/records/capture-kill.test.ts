import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ulid } from '../../../agent/src/core/ids.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { RecordsStore } from '../../../agent/src/records/store.js';

/**
 * kill -9 of a process that is capturing and forwarding, at random moments, 24 rounds, against a
 * local upstream that dedupes by Idempotency-Key, fails 10% of requests with 503 and drops the
 * connection after filing another 10% (a lost response, so the forwarder must resend).
 * Then: every key the worker reported durable is in the store and accepted, and every key's
 * effect happened upstream exactly once.
 */
const ROUNDS = 24;
const WORKER = join(import.meta.dirname, 'capture-kill.worker.ts');

interface Upstream {
  server: Server;
  url: string;
  effects: Map<string, number>;
  requests: number;
  duplicates: number;
}

function startUpstream(): Promise<Upstream> {
  const up: Upstream = { server: null as unknown as Server, url: '', effects: new Map(), requests: 0, duplicates: 0 };
  up.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      up.requests++;
      const key = req.headers['idempotency-key'];
      const parsed = JSON.parse(body) as { id: string };
      if (typeof key !== 'string' || parsed.id !== key) {
        res.writeHead(400).end(JSON.stringify({ reason: 'key header missing or not the body id' }));
        return;
      }
      const r = Math.random();
      if (r < 0.1) {
        res.writeHead(503).end();
        return;
      }
      if (up.effects.has(key)) {
        up.duplicates++;
        res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ duplicate: true }));
        return;
      }
      up.effects.set(key, (up.effects.get(key) ?? 0) + 1); // the "filing": must happen once per key
      if (r < 0.2) {
        req.socket.destroy(); // filed, but the answer is lost
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ref: `F-${key}` }));
    });
  });
  return new Promise((resolve) =>
    up.server.listen(0, '127.0.0.1', () => {
      up.url = `http://127.0.0.1:${(up.server.address() as AddressInfo).port}/captures`;
      resolve(up);
    }),
  );
}

function runWorker(args: string[], onLine: (l: string) => void): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited };
}

describe('offline capture survives kill -9', () => {
  let dir: string;
  let up: Upstream;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'c2-kill-'));
    up = await startUpstream();
  });
  after(() => {
    up.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function drainAndCheck(dbPath: string, key: string, reported: Set<string>, atLeast: number): Promise<void> {
    let drained = false;
    const d = runWorker([dbPath, key, up.url, 'drain'], (l) => (drained ||= l === 'DRAINED'));
    assert.equal(await d.exited, 0);
    assert.ok(drained);
    const store = RecordsStore.open(dbPath, { key: Buffer.from(key, 'hex') });
    try {
      const q = CaptureQueue.open(store.db, Date.now);
      const items = q.list({ limit: 1_000_000 });
      const byId = new Map(items.map((i) => [i.id, i]));
      assert.ok(reported.size >= atLeast, `only ${reported.size} captures confirmed`);
      for (const k of reported) {
        assert.ok(byId.has(k), `captured ${k} lost`);
        assert.equal(byId.get(k)!.state, 'accepted', `${k} not accepted`);
      }
      for (const i of items) assert.equal(up.effects.get(i.id), 1, `${i.id} filed ${up.effects.get(i.id) ?? 0} times`);
      const mine = [...up.effects.keys()].filter((k) => byId.has(k)).length;
      assert.equal(mine, items.length);
      assert.ok(up.duplicates > 0, 'no resend happened: the test did not exercise dedupe');
      process.stdout.write(`# captures=${items.length} confirmed=${reported.size} requests=${up.requests} dedupedResends=${up.duplicates}\n`);
    } finally {
      store.close();
    }
  }

  it(`web: every capture the viewer confirmed (303) survives ${ROUNDS} kills and is filed once`, async () => {
    const dbPath = join(dir, 'records-web.db');
    const key = randomBytes(32).toString('hex');
    const reported = new Set<string>();
    const forms: { path: string; f: Record<string, string> }[] = [
      { path: 'arrival', f: { patient: 'p1', appointment: 'a1' } },
      { path: 'note', f: { patient: 'p2', consultationType: 'telephone', history: 'synthetic history' } },
      { path: 'call', f: { direction: 'incoming', summary: 'synthetic call', urgency: 'routine' } },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      let port!: (p: number) => void;
      const ready = new Promise<number>((r) => (port = r));
      let tmp = '';
      const w = runWorker([dbPath, key, up.url, 'web'], (l) => {
        if (l.startsWith('PORT ')) port(Number(l.slice(5)));
        if (l.startsWith('DIR ')) tmp = l.slice(4);
      });
      const p = await Promise.race([ready, w.exited.then((c) => assert.fail(`worker exited (${c}) before serving`))]);
      const base = `http://127.0.0.1:${p}`;
      const login = await fetch(`${base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'drkill', password: 'kill test password' }),
      });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
      const { csrf } = (await login.json()) as { csrf: string };
      let killed = false;
      const poster = async (n: number) => {
        for (let i = n; !killed; i += 3) {
          const form = forms[i % 3]!;
          const k = ulid();
          try {
            const r = await fetch(`${base}/records/capture/${form.path}`, {
              method: 'POST',
              redirect: 'manual',
              headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ ...form.f, key: k, _csrf: csrf }).toString(),
            });
            if (r.status === 303) reported.add(k);
            else assert.fail(`capture answered ${r.status}: ${await r.text()}`);
          } catch (e) {
            if (!killed) throw e;
          }
        }
      };
      const posting = Promise.all([0, 1, 2].map(poster));
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 300));
      killed = true;
      w.child.kill('SIGKILL');
      assert.equal(await w.exited, null, `round ${round}: worker exited by itself`);
      await posting;
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
    await drainAndCheck(dbPath, key, reported, ROUNDS * 3);
  });

  it(`queue + forwarder: loses nothing and files nothing twice over ${ROUNDS} kills`, async () => {
    const dbPath = join(dir, 'records.db');
    const key = randomBytes(32).toString('hex');
    const reported = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      const w = runWorker([dbPath, key, up.url, 'capture'], (l) => {
        if (l === 'READY') ready();
        else if (l.startsWith('C ')) reported.add(l.slice(2));
      });
      await Promise.race([isReady, w.exited]);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 300));
      w.child.kill('SIGKILL');
      assert.equal(await w.exited, null, `round ${round}: worker exited by itself`);
    }
    await drainAndCheck(dbPath, key, reported, ROUNDS * 5);
  });
});
