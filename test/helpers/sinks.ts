import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createTcp, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** An HTTP sink on loopback that records every POST body (the alert webhook's receiver). */
export async function httpSink(status = 200): Promise<{ url: string; got: unknown[]; close: () => Promise<void>; server: Server; status: { code: number } }> {
  const got: unknown[] = [];
  const st = { code: status };
  const server = createHttp((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      try {
        got.push(JSON.parse(body));
      } catch {
        got.push(body);
      }
      res.statusCode = st.code;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, server, status: st, close: () => new Promise((r) => server.close(() => r())) };
}

export interface Mail {
  from: string;
  to: string[];
  data: string;
}

/** A tiny SMTP server (RFC 5321 happy path) on loopback that records each message. */
export async function smtpSink(): Promise<{ port: number; mails: Mail[]; close: () => Promise<void>; server: TcpServer }> {
  const mails: Mail[] = [];
  const server = createTcp((sock) => {
    let buf = '';
    let cur: Mail = { from: '', to: [], data: '' };
    let inData = false;
    sock.write('220 sink ESMTP\r\n');
    sock.on('data', (b: Buffer) => {
      buf += b.toString();
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            mails.push(cur);
            cur = { from: '', to: [], data: '' };
            sock.write('250 queued\r\n');
          } else cur.data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
          continue;
        }
        const up = line.toUpperCase();
        if (up.startsWith('EHLO') || up.startsWith('HELO')) sock.write('250-sink\r\n250 8BITMIME\r\n');
        else if (up.startsWith('MAIL FROM:')) (cur.from = line.slice(10).replace(/[<>]/g, '')), sock.write('250 ok\r\n');
        else if (up.startsWith('RCPT TO:')) (cur.to.push(line.slice(8).replace(/[<>]/g, '')), sock.write('250 ok\r\n'));
        else if (up === 'DATA') (inData = true), sock.write('354 go\r\n');
        else if (up === 'QUIT') (sock.write('221 bye\r\n'), sock.end());
        else sock.write('502 no\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, mails, server, close: () => new Promise((r) => server.close(() => r())) };
}
