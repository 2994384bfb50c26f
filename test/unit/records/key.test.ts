import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAppError } from '../../../common/errors.js';
import { createLogger } from '../../../common/log.js';
import { FhirDayListSource } from '../../../agent/src/records/day-list.js';
import { GpConnectClient } from '../../../agent/src/records/gpconnect/client.js';
import { changePassphrase, createKey, shredFile, unwrapKey } from '../../../agent/src/records/key.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { runSync } from '../../../agent/src/records/sync.js';
import { startFhirServer, type FhirServer } from '../../fhir-server/server.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { gpcOptions } from '../../fhir-server/client-options.js';

describe('records key and encryption at rest', () => {
  let dir: string;
  let server: FhirServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'c1-key-'));
    server = await startFhirServer({ practice: { patients: 500, clinicians: 3, perClinicianPerDay: 10 } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wraps the data key under the passphrase; wrong passphrase is refused; key file holds no key', async () => {
    const path = join(dir, 'k1');
    const key = await createKey(path, 'correct horse battery');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(!readFileSync(path).includes(key.toString('hex')) && !readFileSync(path).includes(key.toString('base64')));
    assert.deepEqual(await unwrapKey(path, 'correct horse battery'), key);
    await assert.rejects(unwrapKey(path, 'wrong horse battery'), (e) => isAppError(e, 'UNAUTHORIZED'));
    await assert.rejects(createKey(path, 'another passphrase'), (e) => isAppError(e, 'CONFLICT'));
    await assert.rejects(createKey(join(dir, 'short'), 'short'), (e) => isAppError(e, 'BAD_REQUEST'));
    await changePassphrase(path, 'correct horse battery', 'new passphrase here');
    assert.deepEqual(await unwrapKey(path, 'new passphrase here'), key);
    assert.ok(shredFile(path));
    await assert.rejects(unwrapKey(path, 'new passphrase here'), (e) => isAppError(e, 'NOT_FOUND'));
  });

  it('the database and its WAL, read without the key, reveal no patient name or NHS number', async () => {
    const keyPath = join(dir, 'records.key');
    const dbPath = join(dir, 'records.db');
    const key = await createKey(keyPath, 'a long operator passphrase');
    const store = RecordsStore.open(dbPath, { key });
    const clock = new FakeClock();
    const res = await runSync(store, new FhirDayListSource({ baseUrl: server.r4Base, timeoutMs: 5000 }), new GpConnectClient(gpcOptions(server.gpcBase)), {
      timeZone: 'Europe/London',
      workingDays: [1, 2, 3, 4, 5],
      concurrency: 4,
      summaryMaxAgeMs: 3_600_000,
      retries: 0,
      clock,
      log: createLogger({ level: 'silent' }),
    });
    assert.ok(res.patients > 20);
    const rows = store.db.prepare('SELECT nhs_number AS nhs, name FROM rec_patients').all() as { nhs: string; name: string }[];
    const needles = rows.flatMap((r) => [r.nhs, r.name, r.name.split(',')[0]!]).filter((s) => s.length >= 5);
    const grep = (buf: Buffer) => needles.filter((n) => buf.includes(n) || buf.includes(n.toLowerCase()));
    // While open: the WAL holds the recent pages.
    assert.ok(existsSync(`${dbPath}-wal`) && statSync(`${dbPath}-wal`).size > 0, 'WAL present while open');
    assert.deepEqual(grep(readFileSync(`${dbPath}-wal`)), []);
    assert.deepEqual(grep(readFileSync(dbPath)), []);
    // Positive control: the same rows in a plain SQLite file are found by the same grep.
    const plain = new Database(join(dir, 'plain.db'));
    plain.exec('CREATE TABLE t (nhs TEXT, name TEXT)');
    for (const r of rows) plain.prepare('INSERT INTO t VALUES (?, ?)').run(r.nhs, r.name);
    plain.close();
    assert.equal(grep(readFileSync(join(dir, 'plain.db'))).length, needles.length);
    store.close();
    assert.deepEqual(grep(readFileSync(dbPath)), []);
    // Without the key (or with another) the file does not open; destroying the key makes it unreadable.
    assert.throws(() => new Database(dbPath).prepare('SELECT * FROM rec_patients').all());
    shredFile(keyPath);
    await assert.rejects(unwrapKey(keyPath, 'a long operator passphrase'), (e) => isAppError(e, 'NOT_FOUND'));
    const reopened = RecordsStore.open(dbPath, { key });
    assert.equal(reopened.meta().patients, res.patients, 'the data key itself still opens it: only the key file was destroyed');
    reopened.close();
  });
});
