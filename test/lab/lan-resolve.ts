/**
 * One name lookup from a practice PC in the lab's LAN namespace, the way an OS stub resolver does
 * it (c-ares via node:dns, UDP, one try). Prints one JSON line:
 *   {"ok": bool, "ms": number, "addresses": [...]} or {"ok": false, "ms": number, "error": "ETIMEOUT"}
 * usage: lan-resolve.ts SERVER NAME [TIMEOUT_MS]. Node builtins only.
 */
import { Resolver } from 'node:dns/promises';

const [server = '198.51.100.3', name = 'nhs.uk', timeout = '1500'] = process.argv.slice(2);
const r = new Resolver({ timeout: Number(timeout), tries: 1 });
r.setServers([server]);
const start = performance.now();
r.resolve4(name).then(
  (addresses) => process.stdout.write(JSON.stringify({ ok: true, ms: Math.round(performance.now() - start), addresses }) + '\n'),
  (e: NodeJS.ErrnoException) =>
    process.stdout.write(JSON.stringify({ ok: false, ms: Math.round(performance.now() - start), error: e.code ?? e.message }) + '\n'),
);
