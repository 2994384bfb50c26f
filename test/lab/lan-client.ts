/**
 * A practice PC in the lab's LAN namespace: every `intervalMs` it opens a NEW TCP connection to
 * the internet target (GET /whoami, no keep-alive) and prints one JSON line per attempt:
 *   {"start": epochMs, "end": epochMs, "ok": bool, "via": "<address the internet saw>" }
 * The address the internet saw tells which uplink carried it (each ISP routes the appliance's
 * own uplink address; the appliance masquerades the LAN behind it). Node builtins only.
 * usage: lan-client.ts URL INTERVAL_MS TIMEOUT_MS
 */
import { request } from 'node:http';

const [url = 'http://198.51.100.1/whoami', interval = '100', timeout = '1500'] = process.argv.slice(2);

function attempt(): void {
  const start = Date.now();
  let done = false;
  const finish = (ok: boolean, via: string | null) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.destroy();
    process.stdout.write(JSON.stringify({ start, end: Date.now(), ok, via }) + '\n');
  };
  const req = request(url, { agent: false }, (res) => {
    let body = '';
    res.on('data', (c: Buffer) => (body += c.toString()));
    res.on('end', () => {
      try {
        finish(true, (JSON.parse(body) as { you: string }).you);
      } catch {
        finish(false, null);
      }
    });
  });
  const timer = setTimeout(() => finish(false, null), Number(timeout));
  req.on('error', () => finish(false, null));
  req.end();
}

setInterval(attempt, Number(interval));
process.on('SIGTERM', () => process.exit(0));
