/**
 * Child process for capture-kill.test.ts: captures entries as fast as a busy clinic would (every
 * few ms) while the forwarder sends them upstream, until the parent kills it with SIGKILL.
 * Prints "C <key>" only after create() returned, i.e. once the item is durable: the same moment
 * the viewer answers the clinician's form post.
 * Mode `web` instead serves the real viewer (buildWebApp + RecordsFrontDesk) on a random port and
 * prints "PORT <n>"; the parent posts capture forms and counts a capture only when the HTTP answer
 * (303) arrived, exactly what a clinician sees.
 *   argv: dbPath keyHex upstreamUrl mode(capture|drain|web)
 */
import { EventBus } from '../../../agent/src/core/bus.js';
import { systemClock } from '../../../common/clock.js';
import { createLogger } from '../../../common/log.js';
import { CaptureQueue, type CaptureKind } from '../../../agent/src/records/capture.js';
import { CaptureForwarder } from '../../../agent/src/records/forwarder.js';
import { RecordsStore } from '../../../agent/src/records/store.js';

const [dbPath, keyHex, upstreamUrl, mode] = process.argv.slice(2) as [string, string, string, string];
const store = RecordsStore.open(dbPath, { key: Buffer.from(keyHex, 'hex') });
const queue = CaptureQueue.open(store.db, Date.now);
const bus = new EventBus();
const forwarder = new CaptureForwarder(queue, {
  upstreamUrl,
  timeoutMs: 2000,
  retryInitialMs: 5,
  retryMaxMs: 50,
  site: { deviceId: 'c2-kill', odsCode: 'A12345' },
  clock: systemClock,
  log: createLogger({ level: 'silent' }),
  bus,
});
if (mode !== 'web') {
  forwarder.start();
  process.stdout.write('READY\n');
}

const payloads: Record<CaptureKind, unknown> = {
  arrival: { appointmentId: 'appt-1' },
  note: { consultationType: 'telephone', history: 'synthetic history', plan: 'synthetic plan' },
  call: { direction: 'incoming', summary: 'synthetic call', urgency: 'routine' },
};
const kinds: CaptureKind[] = ['arrival', 'note', 'call'];

if (mode === 'web') {
  void serveWeb();
} else if (mode === 'drain') {
  const check = setInterval(() => {
    const c = queue.counts();
    if (c.pending === 0 && c.sent === 0) {
      clearInterval(check);
      void forwarder.stop().then(() => {
        store.close();
        process.stdout.write('DRAINED\n');
        process.exit(0);
      });
    }
  }, 20);
} else {
  let n = 0;
  const tick = () => {
    const kind = kinds[n++ % 3]!;
    const { item } = queue.create({ kind, patientId: `p${n % 7}`, payload: payloads[kind], author: 'drkill', role: 'clinician', device: 'worker' });
    process.stdout.write(`C ${item.id}\n`);
    forwarder.kick();
    setTimeout(tick, 2 + Math.floor(Math.random() * 6));
  };
  tick();
}

async function serveWeb(): Promise<void> {
  const { createTestCtx } = await import('../../helpers/ctx.js');
  const { RecordsFrontDesk } = await import('../../../agent/src/records/viewer/index.js');
  const { buildWebApp } = await import('../../../agent/src/web/app.js');
  const { createUser } = await import('../../../agent/src/auth/index.js');
  const ctx = createTestCtx({
    clock: systemClock,
    config: { status: { https: false }, records: { capture: { upstreamUrl, timeoutMs: 2000, retryInitialMs: 10, retryMaxMs: 50 } } },
  });
  process.stdout.write(`DIR ${ctx.dir}\n`);
  createUser(ctx.db, 'drkill', 'kill test password', 'clinician');
  const desk = new RecordsFrontDesk(() => store);
  desk.start(ctx);
  const app = await buildWebApp(ctx, { https: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`PORT ${(app.server.address() as { port: number }).port}\n`);
}
