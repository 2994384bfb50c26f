import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { AppError } from '../../../common/errors.js';

export interface MailOptions {
  host: string;
  port: number;
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** none: plain SMTP (an internal relay); starttls: upgrade after EHLO, refused if not offered; tls: TLS from the first byte (port 465). */
  security?: 'none' | 'starttls' | 'tls';
  /** PEM CA for the relay's certificate; empty: the system's CAs. */
  caPath?: string;
  username?: string;
  password?: string;
  /** auto: PLAIN when offered, else LOGIN. */
  auth?: 'auto' | 'plain' | 'login';
  timeoutMs?: number;
}

/** Reads SMTP replies (multi-line "250-..." up to "250 ...") from whichever socket is current. */
class Replies {
  private buf = '';
  private lines: string[] = [];
  private waiters: { resolve: (r: { code: number; lines: string[] }) => void; reject: (e: Error) => void }[] = [];
  private error: Error | undefined;

  attach(sock: Socket | TLSSocket): void {
    this.buf = '';
    sock.on('data', (b: Buffer) => {
      this.buf += b.toString('utf8');
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.lines.push(line.slice(4));
        if (/^\d{3}( |$)/.test(line)) {
          const lines = this.lines;
          this.lines = [];
          this.waiters.shift()?.resolve({ code: Number(line.slice(0, 3)), lines });
        }
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new AppError('UPSTREAM_ERROR', 'SMTP connection closed')));
  }

  fail(e: Error): void {
    this.error ??= e;
    for (const w of this.waiters.splice(0)) w.reject(this.error);
  }

  next(): Promise<{ code: number; lines: string[] }> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/**
 * A small SMTP client (RFC 5321) for alert mail: EHLO, optional STARTTLS (RFC 3207) or implicit
 * TLS, optional AUTH PLAIN (RFC 4616) or LOGIN, MAIL/RCPT/DATA with dot-stuffing, QUIT; one
 * connection per message. Credentials are only ever sent over TLS, and a relay that does not offer
 * STARTTLS when it is required is refused (no silent downgrade). An npm mailer would bring far
 * more than this needs.
 */
export async function sendMail(o: MailOptions): Promise<void> {
  const security = o.security ?? 'none';
  if (o.username && security === 'none') throw new AppError('CONFIG_INVALID', 'SMTP AUTH needs security starttls or tls: credentials are never sent in clear');
  const timeout = o.timeoutMs ?? 10_000;
  const ca = o.caPath ? readFileSync(o.caPath) : undefined;
  const replies = new Replies();
  let sock: Socket | TLSSocket =
    security === 'tls' ? tlsConnect({ host: o.host, port: o.port, servername: o.host, ...(ca ? { ca } : {}) }) : connect({ host: o.host, port: o.port });
  const arm = (s: Socket | TLSSocket) => {
    s.setTimeout(timeout, () => s.destroy(new AppError('UPSTREAM_ERROR', 'SMTP timeout')));
    replies.attach(s);
  };
  arm(sock);
  const expect = async (want: number | number[], what: string) => {
    const r = await replies.next();
    if (!(Array.isArray(want) ? want : [want]).includes(r.code))
      throw new AppError('UPSTREAM_ERROR', `SMTP ${what}: expected ${want}, got ${r.code} ${(r.lines.at(-1) ?? '').slice(0, 200)}`, { code: r.code });
    return r;
  };
  const cmd = async (line: string, want: number | number[], what = line.split(' ')[0]!) => {
    const p = expect(want, what);
    sock.write(line + '\r\n');
    return p;
  };
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  try {
    await expect(220, 'greeting');
    let caps = (await cmd('EHLO surgery-edge-fleet', 250)).lines.map((l) => l.toUpperCase());
    if (security === 'starttls') {
      if (!caps.includes('STARTTLS')) throw new AppError('UPSTREAM_ERROR', 'SMTP relay does not offer STARTTLS, which the config requires');
      await cmd('STARTTLS', 220);
      sock.removeAllListeners('data');
      sock.removeAllListeners('close');
      const plain = sock;
      sock = await new Promise<TLSSocket>((res, rej) => {
        const t = tlsConnect({ socket: plain, servername: o.host, ...(ca ? { ca } : {}) }, () => res(t));
        t.once('error', rej);
      });
      arm(sock);
      caps = (await cmd('EHLO surgery-edge-fleet', 250)).lines.map((l) => l.toUpperCase());
    }
    if (o.username) {
      const offered = (caps.find((c) => c.startsWith('AUTH ')) ?? '').split(/\s+/).slice(1);
      const mech = o.auth && o.auth !== 'auto' ? o.auth.toUpperCase() : offered.includes('PLAIN') ? 'PLAIN' : 'LOGIN';
      if (!offered.includes(mech)) throw new AppError('UPSTREAM_ERROR', `SMTP relay does not offer AUTH ${mech} (offers ${offered.join(' ') || 'none'})`);
      if (mech === 'PLAIN') await cmd(`AUTH PLAIN ${b64(`\u0000${o.username}\u0000${o.password ?? ''}`)}`, 235, 'AUTH PLAIN');
      else {
        await cmd('AUTH LOGIN', 334);
        await cmd(b64(o.username), 334, 'AUTH LOGIN user');
        await cmd(b64(o.password ?? ''), 235, 'AUTH LOGIN password');
      }
    }
    await cmd(`MAIL FROM:<${o.from}>`, 250, 'MAIL');
    for (const to of o.to) await cmd(`RCPT TO:<${to}>`, [250, 251], 'RCPT');
    await cmd('DATA', 354);
    const headers = [
      `From: ${o.from}`,
      `To: ${o.to.join(', ')}`,
      `Subject: ${o.subject.replace(/[\r\n]/g, ' ')}`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
    ];
    const body = o.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await cmd(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.`, 250, 'DATA end');
    await cmd('QUIT', 221).catch(() => {});
  } finally {
    sock.destroy();
  }
}
