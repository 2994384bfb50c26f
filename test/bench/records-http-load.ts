/**
 * Load generator for test/bench/records.ts, run in a worker thread so that the viewers' side
 * (writing requests, parsing ~20-40 kB HTML replies) does not share the server's event loop: on the
 * appliance the browsers are on other machines. Keep-alive sockets, one per viewer.
 */
import { Agent, request as httpRequest } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoadJob {
  port: number;
  cookies: string[];
  /**
   * 'burst': every viewer's request sent at the same instant, `rounds` times; 'sustained': each viewer
   * back to back (saturation: no think time at all); 'think': each viewer waits a random think time
   * (exponential, mean `thinkMs`) between pages, as people reading a screen do.
   */
  shape: 'burst' | 'sustained' | 'think';
  thinkMs?: number;
  /** urls[round][viewer] */
  urls: string[][];
}
export interface LoadResult {
  latMs: number[];
  bad: number;
  bytes: number;
}

const job = workerData as LoadJob;
const agent = new Agent({ keepAlive: true, maxSockets: job.cookies.length });
let bad = 0;
let bytes = 0;
const get = (w: number, path: string) =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const r = httpRequest({ host: '127.0.0.1', port: job.port, path, agent, headers: { cookie: job.cookies[w]!, accept: 'text/html' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        bytes += body.length;
        if (res.statusCode !== 200 || !body.includes('as of')) bad++;
        resolve(performance.now() - t0);
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });

const latMs: number[] = [];
const viewers = job.cookies.length;
if (job.shape === 'burst') {
  for (const round of job.urls) latMs.push(...(await Promise.all(round.map((u, w) => get(w, u)))));
} else {
  const think = () => (job.shape === 'think' ? new Promise((r) => setTimeout(r, -Math.log(1 - Math.random()) * (job.thinkMs ?? 1000))) : undefined);
  await Promise.all(
    Array.from({ length: viewers }, async (_, w) => {
      for (const round of job.urls) {
        await think();
        latMs.push(await get(w, round[w]!));
      }
    }),
  );
}
agent.destroy();
parentPort!.postMessage({ latMs, bad, bytes } satisfies LoadResult);
