import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { HttpClient, HttpError } from '../../../agent/src/records/http-fetch.js';

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl for this run. */
function makePki(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  o('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test CA');
  o('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  o('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
  const r = (f: string) => readFileSync(join(dir, f));
  return { ca: r('ca.pem'), cert: r('srv.pem'), key: r('srv.key') };
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

describe('records http-fetch (a real local HTTPS server)', () => {
  let dir: string;
  let pki: { ca: Buffer; cert: Buffer; key: Buffer };
  let server: Server;
  let base: string;
  let handler: Handler = (_q, res) => res.end('');
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string; port: number }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'se-http-fetch-'));
    pki = makePki(dir);
    server = createHttpsServer({ cert: pki.cert, key: pki.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, port: req.socket.remotePort! });
        handler(req, res, body);
      });
    });
    base = `https://127.0.0.1:${await listen(server)}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends method, headers and body; reads status, headers and body; reuses the connection', async () => {
    handler = (_q, res, body) => {
      res.writeHead(201, 'Created', { etag: 'W/"7"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ echo: body }));
    };
    const client = new HttpClient({ ca: pki.ca });
    try {
      seen.length = 0;
      const headers = { 'content-type': 'application/json', 'idempotency-key': 'k1' };
      const res = await client.fetch(`${base}/captures?x=1`, { method: 'POST', headers, body: '{"a":"é"}' });
      assert.equal(res.status, 201);
      assert.equal(res.ok, true);
      assert.equal(res.statusText, 'Created');
      assert.equal(res.headers.get('ETag'), 'W/"7"');
      assert.equal(res.headers.get('x-missing'), null);
      assert.deepEqual(JSON.parse(await res.text()), { echo: '{"a":"é"}' });
      assert.equal(seen[0]!.method, 'POST');
      assert.equal(seen[0]!.url, '/captures?x=1');
      assert.equal(seen[0]!.headers['idempotency-key'], 'k1');
      assert.equal(seen[0]!.headers['content-length'], String(Buffer.byteLength('{"a":"é"}')));
      const second = await client.fetch(`${base}/again`);
      await second.text();
      assert.equal(seen[1]!.port, seen[0]!.port, 'the second request rides the kept-alive connection');
      assert.equal(seen[0]!.headers['accept-encoding'], undefined, 'no compression is asked for');
    } finally {
      client.close();
    }
  });

  it('refuses a server whose certificate the configured CA did not sign, and one the system CAs do not know', async () => {
    handler = (_q, res) => res.end('secret');
    const other = mkdtempSync(join(tmpdir(), 'se-http-fetch-other-'));
    try {
      const stranger = makePki(other);
      const wrongCa = new HttpClient({ ca: stranger.ca });
      const systemCas = new HttpClient();
      await assert.rejects(wrongCa.fetch(`${base}/x`), /self-signed|unable to verify|certificate/i);
      await assert.rejects(systemCas.fetch(`${base}/x`), /self-signed|unable to verify|certificate/i);
      wrongCa.close();
      systemCas.close();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('does not follow a redirect: the 3xx comes back, not ok, and the other host sees nothing', async () => {
    let elsewhere = 0;
    const other = createHttpServer((_q, res) => {
      elsewhere++;
      res.end('stolen');
    });
    const otherUrl = `http://127.0.0.1:${await listen(other)}/steal`;
    handler = (_q, res) => {
      res.writeHead(302, { location: otherUrl });
      res.end();
    };
    const client = new HttpClient({ ca: pki.ca });
    try {
      const res = await client.fetch(`${base}/Patient`, { headers: { authorization: 'Bearer t0ken' } });
      assert.equal(res.status, 302);
      assert.equal(res.ok, false);
      assert.equal(res.headers.get('location'), otherUrl);
      assert.equal(elsewhere, 0);
    } finally {
      client.close();
      await new Promise((r) => other.close(r));
    }
  });

  it('caps the body: declared too large, streamed too large, and decompressed too large', async () => {
    const client = new HttpClient({ ca: pki.ca, maxBytes: 1000 });
    try {
      handler = (_q, res) => res.end('x'.repeat(5000));
      const declared = await client.fetch(`${base}/big`);
      await assert.rejects(declared.text(), (e: unknown) => e instanceof HttpError && e.code === 'TOO_LARGE');
      handler = (_q, res) => {
        res.writeHead(200); // chunked: no content-length to refuse up front
        for (let i = 0; i < 10; i++) res.write('y'.repeat(500));
        res.end();
      };
      const streamed = await client.fetch(`${base}/big-chunked`);
      await assert.rejects(streamed.text(), (e: unknown) => e instanceof HttpError && e.code === 'TOO_LARGE');
      handler = (_q, res) => {
        res.writeHead(200, { 'content-encoding': 'gzip' });
        res.end(gzipSync('z'.repeat(100_000))); // ~100 bytes on the wire, 100 kB decoded
      };
      const bomb = await client.fetch(`${base}/bomb`);
      await assert.rejects(bomb.text(), (e: unknown) => e instanceof HttpError && e.code === 'TOO_LARGE');
      handler = (_q, res) => {
        res.writeHead(200, { 'content-encoding': 'gzip' });
        res.end(gzipSync('{"ok":true}'));
      };
      assert.equal(await (await client.fetch(`${base}/small-gzip`)).text(), '{"ok":true}');
      // The client is still usable after refusing bodies.
      handler = (_q, res) => res.end('fine');
      assert.equal(await (await client.fetch(`${base}/after`)).text(), 'fine');
    } finally {
      client.close();
    }
  });

  it('times out through the signal (a TimeoutError, as fetch gave) and on an idle socket', async () => {
    handler = () => {}; // never answers
    const client = new HttpClient({ ca: pki.ca, idleTimeoutMs: 300 });
    try {
      const t0 = Date.now();
      await assert.rejects(client.fetch(`${base}/slow`, { signal: AbortSignal.timeout(100) }), (e: unknown) => (e as Error).name === 'TimeoutError');
      assert.ok(Date.now() - t0 < 1000);
      await assert.rejects(client.fetch(`${base}/slow`), (e: unknown) => e instanceof HttpError && e.code === 'IDLE_TIMEOUT');
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(client.fetch(`${base}/slow`, { signal: ac.signal }), (e: unknown) => (e as Error).name === 'AbortError');
    } finally {
      client.close();
    }
  });

  it('refuses other URL schemes and unreadable URLs with a clear error', async () => {
    const client = new HttpClient();
    await assert.rejects(client.fetch('file:///etc/passwd'), /unsupported URL scheme file:/);
    await assert.rejects(client.fetch('not a url'), /invalid URL/);
    client.close();
  });

  it('reports a refused connection as an error, not a hang', async () => {
    const s = createHttpServer();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    const client = new HttpClient();
    await assert.rejects(client.fetch(`http://127.0.0.1:${port}/`), /ECONNREFUSED/);
    client.close();
  });
});
