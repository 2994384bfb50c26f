import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Outbox, type OutboxKind } from '../../../agent/src/telemetry/outbox.js';
import { createTestCtx } from '../../helpers/ctx.js';

describe('telemetry outbox (real SQLite)', () => {
  const ctx = createTestCtx();
  after(() => ctx.cleanup());
  Outbox.migrate(ctx.db);
  let n = 0;
  const row = (kind: OutboxKind) => ({ id: `id-${++n}`, kind, topic: `t/${kind}`, payload: String(n), retain: 0, createdAt: n });

  it('hands rows out in order, skips in-flight ones, deletes only on ack, ignores a repeated id', () => {
    const ob = new Outbox(ctx.db, 100);
    for (let i = 0; i < 5; i++) ob.enqueue(row('event'));
    ob.enqueue({ ...row('event'), id: 'id-1' });
    assert.equal(ob.depth(), 5);
    const first = ob.peek(2);
    assert.deepEqual(
      first.map((r) => r.payload),
      ['1', '2'],
    );
    assert.deepEqual(
      ob.peek(10, first[1]!.seq).map((r) => r.payload),
      ['3', '4', '5'],
    );
    ob.ack(first[0]!.seq);
    assert.deepEqual(
      ob.peek(10).map((r) => r.payload),
      ['2', '3', '4', '5'],
    );
    for (const r of ob.peek(10)) ob.ack(r.seq);
    assert.equal(ob.depth(), 0);
  });

  it('thins telemetry (every other oldest sample) before touching events, and never drops an event for a sample', () => {
    const ob = new Outbox(ctx.db, 10);
    ob.enqueue(row('event'));
    for (let i = 0; i < 8; i++) ob.enqueue(row('telemetry'));
    ob.enqueue(row('event'));
    assert.equal(ob.depth(), 10);
    const tele0 = ob
      .peek(20)
      .filter((r) => r.kind === 'telemetry')
      .map((r) => r.payload);
    const r1 = ob.enqueue(row('event'));
    assert.equal(r1.dropped, 1);
    assert.equal(r1.depth, 10);
    const after1 = ob.peek(20);
    assert.equal(after1.filter((r) => r.kind === 'event').length, 3, 'events kept');
    assert.ok(!after1.some((r) => r.payload === tele0[0]), 'the oldest sample went first');
    // Fill with events until no telemetry remains: events then replace telemetry, never each other.
    for (let i = 0; i < 7; i++) ob.enqueue(row('event'));
    assert.equal(ob.peek(20).filter((r) => r.kind === 'telemetry').length, 0);
    const sample = ob.enqueue(row('telemetry'));
    assert.equal(sample.dropped, 1, 'the new sample is the one dropped');
    assert.equal(ob.peek(20).filter((r) => r.kind === 'event').length, 10);
    // Only when the outbox is all events does the oldest event go.
    const oldest = ob.peek(1)[0]!.payload;
    const r2 = ob.enqueue(row('event'));
    assert.equal(r2.dropped, 1);
    assert.notEqual(ob.peek(1)[0]!.payload, oldest);
    for (const r of ob.peek(100)) ob.ack(r.seq);
  });

  it('persists and increments bdSeq per session', () => {
    const a = new Outbox(ctx.db, 10);
    const s1 = a.nextBdSeq();
    const s2 = new Outbox(ctx.db, 10).nextBdSeq();
    assert.equal(s2, s1 + 1);
  });
});
