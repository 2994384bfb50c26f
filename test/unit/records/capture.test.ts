import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { EventBus } from '../../../agent/src/core/bus.js';
import { createLogger } from '../../../common/log.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { CaptureForwarder } from '../../../agent/src/records/forwarder.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const note = { consultationType: 'telephone', history: 'cough 3 days', plan: 'safety-net advice' };
const who = { author: 'drwho', role: 'clinician', device: '10.0.0.9 test' };

describe('capture queue', () => {
  let dir: string;
  let store: RecordsStore;
  let clock: FakeClock;
  let queue: CaptureQueue;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'c2-capture-'));
    store = RecordsStore.open(join(dir, 'records.db'), { key: randomBytes(32) });
    clock = new FakeClock();
    queue = CaptureQueue.open(store.db, clock.now);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a patient captures and recent arrivals through indexes, not by scanning every capture ever made', async () => {
    const plan = (sql: string, ...args: unknown[]) =>
      (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join('; ');
    assert.match(plan('SELECT * FROM rec_captures WHERE patient_id = ? ORDER BY id DESC LIMIT 50', 'p1'), /USING INDEX rec_captures_patient/);
    assert.match(
      plan("SELECT payload FROM rec_captures WHERE kind = 'arrival' AND created_at >= ? AND resolution IS NULL", 0),
      /USING INDEX rec_captures_kind_created/,
    );
    const old = queue.create({ kind: 'arrival', patientId: 'p1', payload: { appointmentId: 'old-appt' }, ...who }).item;
    await clock.advance(8 * 86_400_000);
    queue.create({ kind: 'arrival', patientId: 'p1', payload: { appointmentId: 'today-appt' }, ...who });
    assert.deepEqual([...queue.arrivedAppointments()], ['today-appt']);
    assert.ok(queue.get(old.id), 'old arrivals are kept, only not read for the day list');
  });

  it('stores with provenance; the same key twice is one item', () => {
    const key = CaptureQueue.newKey(clock.now());
    const a = queue.create({ id: key, kind: 'note', patientId: '9000000009', payload: note, ...who });
    const b = queue.create({ id: key, kind: 'note', patientId: '9000000009', payload: note, ...who });
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(queue.list().length, 1);
    assert.equal(a.item.state, 'pending');
    assert.equal(a.item.author, 'drwho');
    assert.equal(a.item.createdAt, clock.now());
    assert.throws(
      () => queue.create({ id: key, kind: 'call', patientId: '9000000009', payload: { direction: 'incoming', summary: 'x', urgency: 'routine' }, ...who }),
      /already used/,
    );
  });

  it('validates payloads and keys', () => {
    assert.throws(() => queue.create({ kind: 'note', patientId: null, payload: { history: 'x' }, ...who }), /invalid note/);
    assert.throws(
      () => queue.create({ kind: 'call', patientId: null, payload: { direction: 'sideways', summary: 'x', urgency: 'routine' }, ...who }),
      /invalid call/,
    );
    assert.throws(() => queue.create({ id: 'not-a-ulid', kind: 'arrival', patientId: null, payload: {}, ...who }), /ULID/);
    assert.equal(queue.create({ kind: 'arrival', patientId: 'p', payload: { appointmentId: 'a1' }, ...who }).created, true);
  });

  it('retry re-sends a rejected item under a new key; dismiss keeps it with a note', () => {
    const { item } = queue.create({ kind: 'note', patientId: 'p1', payload: note, ...who });
    assert.throws(() => queue.retry(item.id, 'admin'), /only unresolved rejected/);
    queue.markSent(item.id);
    queue.markRejected(item.id, 'patient not registered here');
    const again = queue.retry(item.id, 'admin', { ...note, history: 'corrected' });
    assert.notEqual(again.id, item.id);
    assert.equal(again.supersedes, item.id);
    assert.equal(again.state, 'pending');
    assert.equal((again.payload as { history: string }).history, 'corrected');
    const old = queue.get(item.id)!;
    assert.equal(old.state, 'rejected');
    assert.equal(old.reason, 'patient not registered here');
    assert.equal(old.resolution, `retried as ${again.id}`);
    assert.equal(old.resolvedBy, 'admin');
    assert.throws(() => queue.retry(item.id, 'admin'), /only unresolved/);

    const { item: second } = queue.create({ kind: 'note', patientId: 'p2', payload: note, ...who });
    queue.markSent(second.id);
    queue.markRejected(second.id, 'duplicate of EMIS entry');
    assert.throws(() => queue.dismiss(second.id, 'admin', '  '), /say how/);
    assert.match(queue.dismiss(second.id, 'admin', 'filed by hand').resolution!, /filed by hand/);
    const c = queue.counts();
    assert.equal(c.rejected, 2);
    assert.equal(c.unresolvedRejected, 0);
    assert.equal(c.pending, 1);
  });
});

/** A fake endpoint: scripted responses per call, records keys it saw. */
function fakeEndpoint(script: Array<number | 'down'>) {
  const seen: string[] = [];
  const bodies: unknown[] = [];
  const fn = (async (_url: string | URL | Request, init?: RequestInit) => {
    const key = (init!.headers as Record<string, string>)['idempotency-key']!;
    seen.push(key);
    bodies.push(JSON.parse(String(init!.body)));
    const step = script.shift() ?? 201;
    if (step === 'down') throw new TypeError('fetch failed');
    const body = step === 422 ? { reason: 'NHS number not known' } : step === 409 ? { duplicate: true } : { ref: `R-${key}` };
    return new Response(JSON.stringify(body), { status: step });
  }) as typeof fetch;
  return { fn, seen, bodies };
}

describe('capture forwarder', () => {
  let dir: string;
  let store: RecordsStore;
  let clock: FakeClock;
  let queue: CaptureQueue;
  let bus: EventBus;
  const log = createLogger({ level: 'silent' });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'c2-fwd-'));
    store = RecordsStore.open(join(dir, 'records.db'), { key: randomBytes(32) });
    clock = new FakeClock();
    queue = CaptureQueue.open(store.db, clock.now);
    bus = new EventBus();
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const forwarder = (fetchFn: typeof fetch) =>
    new CaptureForwarder(queue, {
      upstreamUrl: 'http://upstream.invalid/captures',
      authToken: 'tok',
      timeoutMs: 1000,
      retryInitialMs: 1000,
      retryMaxMs: 8000,
      site: { deviceId: 'dev1', odsCode: 'A12345' },
      clock,
      log,
      bus,
      fetch: fetchFn,
    });

  it('accepts, rejects with reason, and retries with backoff while the link is down', async () => {
    const ep = fakeEndpoint(['down', 'down', 201, 422]);
    const events: string[] = [];
    bus.on('records.capture-state', (e) => events.push(`${e.id.slice(-4)}:${e.state}`));
    const a = queue.create({ kind: 'note', patientId: 'p1', payload: note, ...who }).item;
    const b = queue.create({ kind: 'call', patientId: 'p2', payload: { direction: 'incoming', summary: 'asks for results', urgency: 'routine' }, ...who }).item;
    const f = forwarder(ep.fn);
    f.start();
    await clock.advance(0);
    assert.equal(queue.get(a.id)!.state, 'pending');
    assert.equal(queue.get(a.id)!.reason, 'fetch failed');
    assert.equal(ep.seen.length, 1);
    await clock.advance(1000); // first backoff is at most 1000 ms
    assert.equal(ep.seen.length, 2);
    await clock.advance(2000); // second at most 2000 ms
    assert.equal(queue.get(a.id)!.state, 'accepted');
    assert.equal(queue.get(a.id)!.upstreamRef, `R-${a.id}`);
    assert.equal(queue.get(b.id)!.state, 'rejected');
    assert.equal(queue.get(b.id)!.reason, 'NHS number not known');
    assert.deepEqual(ep.seen, [a.id, a.id, a.id, b.id]);
    const body = ep.bodies[0] as { provenance: { author: string }; site: { odsCode: string } };
    assert.equal(body.provenance.author, 'drwho');
    assert.equal(body.site.odsCode, 'A12345');
    assert.equal(queue.get(a.id)!.attempts, 3);
    assert.deepEqual(
      events.filter((e) => e.startsWith(a.id.slice(-4))).map((e) => e.split(':')[1]),
      ['sent', 'pending', 'sent', 'pending', 'sent', 'accepted'],
    );
    await f.stop();
  });

  it('resends an item left in `sent` by a crash; a 409 duplicate counts as accepted', async () => {
    const a = queue.create({ kind: 'arrival', patientId: 'p1', payload: {}, ...who }).item;
    queue.markSent(a.id); // the agent died here, request maybe delivered
    const ep = fakeEndpoint([409]);
    const f = forwarder(ep.fn);
    f.start();
    await clock.advance(0);
    assert.deepEqual(ep.seen, [a.id]);
    assert.equal(queue.get(a.id)!.state, 'accepted');
    await f.stop();
  });

  it('survives answers that are JSON but not an object (null, arrays, numbers) without losing the item', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const answers: Array<[number, string]> = [
        [200, 'null'],
        [422, 'null'],
        [409, '[1]'],
        [201, '7'],
      ];
      const fn = (async () => {
        const [status, text] = answers.shift() ?? [201, '{}'];
        return new Response(text, { status });
      }) as typeof fetch;
      const items = [0, 1, 2, 3].map(() => queue.create({ kind: 'arrival', patientId: 'p1', payload: {}, ...who }).item);
      const f = forwarder(fn);
      f.start();
      await clock.advance(0);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        items.map((i) => queue.get(i.id)!.state),
        ['accepted', 'rejected', 'rejected', 'accepted'],
      );
      assert.equal(queue.get(items[0]!.id)!.upstreamRef, null);
      assert.match(queue.get(items[1]!.id)!.reason!, /^HTTP 422/);
      assert.deepEqual(unhandled, []);
      await f.stop();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('stop() aborts a request in flight; the item goes back to pending', async () => {
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    const hang = ((_u: string | URL | Request, init?: RequestInit) =>
      new Promise<Response>((_res, rej) => {
        started();
        init!.signal!.addEventListener('abort', () => rej(new DOMException('aborted', 'AbortError')));
      })) as typeof fetch;
    const { item } = queue.create({ kind: 'arrival', patientId: 'p1', payload: {}, ...who });
    const f = new CaptureForwarder(queue, {
      upstreamUrl: 'http://upstream.invalid/captures',
      timeoutMs: 600_000,
      retryInitialMs: 1000,
      retryMaxMs: 8000,
      site: { deviceId: 'dev1', odsCode: 'A12345' },
      clock,
      log,
      bus,
      fetch: hang,
    });
    f.start();
    await inFlight;
    assert.equal(queue.get(item.id)!.state, 'sent');
    await f.stop();
    assert.equal(queue.get(item.id)!.state, 'pending');
  });

  it('kick() sends a new capture at once instead of waiting out the backoff', async () => {
    const ep = fakeEndpoint(['down']);
    const f = forwarder(ep.fn);
    queue.create({ kind: 'arrival', patientId: 'p1', payload: {}, ...who });
    f.start();
    await clock.advance(0);
    assert.equal(ep.seen.length, 1);
    queue.create({ kind: 'arrival', patientId: 'p2', payload: {}, ...who });
    f.kick();
    await clock.advance(0);
    assert.equal(ep.seen.length, 3);
    assert.equal(queue.counts().accepted, 2);
    await f.stop();
  });
});
