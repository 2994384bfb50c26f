import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sendMail, type MailOptions } from '../../../fleet/src/alerts/smtp.js';
import { tempDir } from '../../helpers/fleet.js';
import { smtpSink } from '../../helpers/sinks.js';

let opensslMissing: string | false = false;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  opensslMissing = 'openssl is not installed';
}

/**
 * Alert mail over STARTTLS and implicit TLS with AUTH PLAIN and LOGIN, against a sink on loopback
 * with a certificate made here (openssl) and trusted through caPath; plus the refusals: credentials
 * never in clear, no downgrade when STARTTLS is missing, wrong password and untrusted certificate.
 */
describe('alert mail: SMTP AUTH and TLS (sink on loopback)', { skip: opensslMissing }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let tls: { key: string; cert: string };
  let caPath: string;
  const auth = { user: 'fleet-alerts', pass: 'relay pass 1234' };
  const sinks: { close: () => Promise<void> }[] = [];
  const mail = (port: number, o: Partial<MailOptions> = {}): MailOptions => ({
    host: 'localhost',
    port,
    from: 'fleet@icb.invalid',
    to: ['it@icb.invalid'],
    subject: 'P81001-01 offline for 16 min',
    text: 'Device: P81001-01\n.dot line\n',
    caPath,
    timeoutMs: 5000,
    ...o,
  });
  const sink = async (o: Parameters<typeof smtpSink>[0]) => {
    const s = await smtpSink(o);
    sinks.push(s);
    return s;
  };

  before(() => {
    tmp = tempDir('fl-smtp-');
    const key = join(tmp.dir, 'key.pem');
    caPath = join(tmp.dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        caPath,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    tls = { key: readFileSync(key, 'utf8'), cert: readFileSync(caPath, 'utf8') };
  });
  after(async () => {
    for (const s of sinks) await s.close();
    tmp?.rm();
  });

  it('STARTTLS then AUTH PLAIN (auto picks PLAIN); the message arrives over TLS, dot-stuffed', async () => {
    const s = await sink({ tls, auth });
    await sendMail(mail(s.port, { security: 'starttls', username: auth.user, password: auth.pass }));
    assert.equal(s.mails.length, 1);
    assert.deepEqual([s.mails[0]!.tls, s.mails[0]!.user], [true, auth.user]);
    assert.match(s.mails[0]!.data, /Subject: P81001-01 offline for 16 min/);
    assert.match(s.mails[0]!.data, /\n\.dot line\n/);
  });

  it('STARTTLS then AUTH LOGIN', async () => {
    const s = await sink({ tls, auth });
    await sendMail(mail(s.port, { security: 'starttls', auth: 'login', username: auth.user, password: auth.pass }));
    assert.deepEqual(
      s.mails.map((m) => [m.tls, m.user]),
      [[true, auth.user]],
    );
  });

  it('implicit TLS (port 465 style) with AUTH PLAIN', async () => {
    const s = await sink({ tls: { ...tls, implicit: true }, auth });
    await sendMail(mail(s.port, { security: 'tls', username: auth.user, password: auth.pass }));
    assert.deepEqual(
      s.mails.map((m) => [m.tls, m.user]),
      [[true, auth.user]],
    );
  });

  it('a wrong password is an error with the 535, and nothing is sent', async () => {
    const s = await sink({ tls, auth });
    await assert.rejects(sendMail(mail(s.port, { security: 'starttls', username: auth.user, password: 'wrong' })), (e: Error) =>
      /AUTH PLAIN: expected 235, got 535/.test(e.message),
    );
    assert.equal(s.mails.length, 0);
    assert.equal(s.authFailures, 1);
  });

  it('no downgrade: a relay that does not offer STARTTLS is refused before any credential or mail', async () => {
    const s = await sink({ tls, auth, hideStartTls: true });
    await assert.rejects(sendMail(mail(s.port, { security: 'starttls', username: auth.user, password: auth.pass })), /does not offer STARTTLS/);
    assert.deepEqual([s.mails.length, s.authFailures], [0, 0]);
  });

  it('credentials are never sent in clear, and an untrusted certificate is refused', async () => {
    const s = await sink({ tls, auth });
    await assert.rejects(sendMail(mail(s.port, { security: 'none', username: auth.user, password: auth.pass })), /never sent in clear/);
    await assert.rejects(sendMail(mail(s.port, { security: 'starttls', caPath: '', username: auth.user, password: auth.pass })), /self[- ]signed|certificate/i);
    assert.equal(s.mails.length, 0);
  });

  it('plain relay without AUTH still works (the internal-relay default)', async () => {
    const s = await sink({});
    await sendMail(mail(s.port, { host: '127.0.0.1' }));
    assert.deepEqual(
      s.mails.map((m) => [m.tls, m.user]),
      [[false, null]],
    );
  });
});
