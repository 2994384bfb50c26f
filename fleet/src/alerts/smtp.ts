import { connect, type Socket } from 'node:net';
import { AppError } from '../../../agent/src/core/errors.js';

/**
 * A minimal SMTP client (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT) for the ICB's internal relay:
 * plain text mail, dot-stuffed, one connection per message. No AUTH/STARTTLS: the relay is on
 * the ICB's network (docs/fleet.md says so); an npm mailer would bring far more than this needs.
 */
export async function sendMail(o: { host: string; port: number; from: string; to: string[]; subject: string; text: string; timeoutMs?: number }): Promise<void> {
  const sock: Socket = connect({ host: o.host, port: o.port });
  sock.setTimeout(o.timeoutMs ?? 10_000, () => sock.destroy(new Error('SMTP timeout')));
  let buf = '';
  const waiters: ((line: string) => void)[] = [];
  sock.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      // Multi-line replies ("250-...") end with "250 ...".
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) waiters.shift()?.(line);
    }
  });
  const failed = new Promise<never>((_, rej) => {
    sock.once('error', rej);
    sock.once('close', () => rej(new AppError('UPSTREAM_ERROR', 'SMTP connection closed')));
  });
  failed.catch(() => {});
  const reply = (expect: number) =>
    Promise.race([
      new Promise<string>((res) => waiters.push(res)).then((l) => {
        if (Number(l.slice(0, 3)) !== expect) throw new AppError('UPSTREAM_ERROR', `SMTP: expected ${expect}, got ${l.slice(0, 200)}`);
        return l;
      }),
      failed,
    ]);
  const cmd = async (line: string, expect: number) => {
    const p = reply(expect);
    sock.write(line + '\r\n');
    return p;
  };
  try {
    await reply(220);
    await cmd('EHLO surgery-edge-fleet', 250);
    await cmd(`MAIL FROM:<${o.from}>`, 250);
    for (const to of o.to) await cmd(`RCPT TO:<${to}>`, 250);
    await cmd('DATA', 354);
    const headers = [`From: ${o.from}`, `To: ${o.to.join(', ')}`, `Subject: ${o.subject.replace(/[\r\n]/g, ' ')}`, `Date: ${new Date().toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8'];
    const body = o.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await cmd(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.`, 250);
    await cmd('QUIT', 221).catch(() => {});
  } finally {
    sock.destroy();
  }
}
