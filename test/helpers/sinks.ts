import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createTcp, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
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
  /** The session was TLS (implicit or after STARTTLS) when the message was sent. */
  tls: boolean;
  /** The AUTH user, when the client authenticated. */
  user: string | null;
}

export interface SmtpSinkOptions {
  /** PEM key and certificate: offer STARTTLS (or, with implicit, speak TLS from the first byte). */
  tls?: { key: string; cert: string; implicit?: boolean };
  /** Offer AUTH PLAIN LOGIN and require it before MAIL. */
  auth?: { user: string; pass: string };
  /** Do not advertise STARTTLS even with tls set (a downgrading relay). */
  hideStartTls?: boolean;
}

/**
 * A small SMTP server on loopback that records each message: RFC 5321 happy path, STARTTLS
 * (RFC 3207, the socket upgraded in place with the given certificate), implicit TLS, AUTH PLAIN
 * (RFC 4616) and LOGIN checked against one user. Auth attempts are recorded (no passwords).
 */
export async function smtpSink(
  opts: SmtpSinkOptions = {},
): Promise<{ port: number; mails: Mail[]; authFailures: number; close: () => Promise<void>; server: TcpServer }> {
  const mails: Mail[] = [];
  const st = { authFailures: 0 };
  const session = (raw: Socket, startsTls: boolean) => {
    let sock: Socket = raw;
    let buf = '';
    let tlsOn = startsTls;
    let user: string | null = null;
    let cur: Mail = { from: '', to: [], data: '', tls: false, user: null };
    let inData = false;
    let login: 'user' | 'pass' | null = null;
    let loginUser = '';
    const ok = (u: string, p: string) => opts.auth && u === opts.auth.user && p === opts.auth.pass;
    const onData = (b: Buffer) => {
      buf += b.toString();
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            mails.push({ ...cur, tls: tlsOn, user });
            cur = { from: '', to: [], data: '', tls: false, user: null };
            sock.write('250 queued\r\n');
          } else cur.data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
          continue;
        }
        if (login) {
          const v = Buffer.from(line, 'base64').toString();
          if (login === 'user') ((loginUser = v), (login = 'pass'), sock.write(`334 ${Buffer.from('Password:').toString('base64')}\r\n`));
          else {
            login = null;
            if (ok(loginUser, v)) ((user = loginUser), sock.write('235 ok\r\n'));
            else (st.authFailures++, sock.write('535 5.7.8 bad credentials\r\n'));
          }
          continue;
        }
        const up = line.toUpperCase();
        if (up.startsWith('EHLO') || up.startsWith('HELO')) {
          const caps = ['sink', '8BITMIME', ...(opts.tls && !tlsOn && !opts.hideStartTls ? ['STARTTLS'] : []), ...(opts.auth ? ['AUTH PLAIN LOGIN'] : [])];
          sock.write(caps.map((c, k) => `250${k === caps.length - 1 ? ' ' : '-'}${c}\r\n`).join(''));
        } else if (up === 'STARTTLS' && opts.tls && !tlsOn) {
          sock.write('220 go ahead\r\n');
          sock.removeListener('data', onData);
          const t = new TLSSocket(sock, { isServer: true, key: opts.tls.key, cert: opts.tls.cert });
          t.on('error', () => {});
          t.on('data', onData);
          sock = t;
          tlsOn = true;
          user = null;
          buf = '';
        } else if (up.startsWith('AUTH PLAIN ') && opts.auth) {
          const [, u, p] = Buffer.from(line.slice(11), 'base64').toString().split('\u0000');
          if (ok(u ?? '', p ?? '')) ((user = u!), sock.write('235 ok\r\n'));
          else (st.authFailures++, sock.write('535 5.7.8 bad credentials\r\n'));
        } else if (up === 'AUTH LOGIN' && opts.auth) ((login = 'user'), sock.write(`334 ${Buffer.from('Username:').toString('base64')}\r\n`));
        else if (up.startsWith('MAIL FROM:')) {
          if (opts.auth && !user) sock.write('530 5.7.0 authentication required\r\n');
          else ((cur.from = line.slice(10).replace(/[<>]/g, '')), sock.write('250 ok\r\n'));
        } else if (up.startsWith('RCPT TO:')) (cur.to.push(line.slice(8).replace(/[<>]/g, '')), sock.write('250 ok\r\n'));
        else if (up === 'DATA') ((inData = true), sock.write('354 go\r\n'));
        else if (up === 'QUIT') (sock.write('221 bye\r\n'), sock.end());
        else sock.write('502 no\r\n');
      }
    };
    sock.on('data', onData);
    sock.on('error', () => {});
    sock.write('220 sink ESMTP\r\n');
  };
  const server = opts.tls?.implicit
    ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, (s) => session(s, true))
    : createTcp((s) => session(s, false));
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    mails,
    server,
    get authFailures() {
      return st.authFailures;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
