/**
 * Load generator for test/bench/records.ts, run in a worker thread so that the viewers' side
 * (writing requests, parsing ~20-40 kB HTML replies) does not share the server's event loop: on the
 * appliance the browsers are on other machines. Keep-alive sockets, one per viewer.
 *
 * On this 2-core machine the generator's own CPU lands in the measured latency (it shares the cores
 * with the server): node's http client costs ~0.3-0.5 ms per response of its own. So by default each
 * viewer is a raw keep-alive socket that writes a fixed request and reads the reply by its
 * content-length (or chunked framing); LOADGEN=node-http runs the old node:http client instead, to
 * compare. Both count a reply as good only when it is a 200 carrying the page's "as of" line.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
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
const nodeHttpGet = (w: number, path: string) =>
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

/** One viewer's kept-alive connection: one request at a time, the reply read by its framing. */
class RawViewer {
  private sock: Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private pending: { t0: number; resolve: (ms: number) => void; reject: (e: Error) => void } | null = null;

  constructor(private readonly cookie: string) {}

  get(path: string): Promise<number> {
    const sock = (this.sock ??= this.open());
    return new Promise<number>((resolve, reject) => {
      this.pending = { t0: performance.now(), resolve, reject };
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${job.port}\r\nCookie: ${this.cookie}\r\nAccept: text/html\r\nConnection: keep-alive\r\n\r\n`);
    });
  }

  close(): void {
    this.sock?.destroy();
  }

  private open(): Socket {
    const s = connect({ host: '127.0.0.1', port: job.port, noDelay: true });
    s.on('data', (c: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
      this.parse();
    });
    s.on('error', (e) => this.pending?.reject(e));
    s.on('close', () => {
      this.sock = null;
      this.pending?.reject(new Error('connection closed mid-reply'));
    });
    return s;
  }

  private parse(): void {
    const p = this.pending;
    const headEnd = this.buf.indexOf('\r\n\r\n');
    if (!p || headEnd < 0) return;
    const head = this.buf.subarray(0, headEnd).toString('latin1');
    const status = Number(head.slice(9, 12));
    const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body: Buffer;
    let used: number;
    if (len) {
      used = headEnd + 4 + Number(len[1]);
      if (this.buf.length < used) return;
      body = this.buf.subarray(headEnd + 4, used);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let at = headEnd + 4;
      for (;;) {
        const eol = this.buf.indexOf('\r\n', at);
        if (eol < 0) return;
        const size = Number.parseInt(this.buf.subarray(at, eol).toString('latin1'), 16);
        if (this.buf.length < eol + 2 + size + 2) return;
        if (size === 0) {
          used = eol + 4;
          break;
        }
        parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else return p.reject(new Error(`reply without framing: ${head.split('\r\n')[0]}`));
    this.buf = this.buf.subarray(used);
    this.pending = null;
    const text = body.toString('utf8');
    bytes += text.length;
    if (status !== 200 || !text.includes('as of')) bad++;
    p.resolve(performance.now() - p.t0);
  }
}

const raw = job.cookies.map((c) => new RawViewer(c));
const get = process.env.LOADGEN === 'node-http' ? nodeHttpGet : (w: number, path: string) => raw[w]!.get(path);

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
for (const v of raw) v.close();
parentPort!.postMessage({ latMs, bad, bytes } satisfies LoadResult);
