import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStateDb } from '../../../agent/src/core/db.js';
import { AuditLog } from '../../../agent/src/records/audit.js';
import { CaptureQueue } from '../../../agent/src/records/capture.js';
import { readRuntimeKey } from '../../../agent/src/records/key.js';
import { RecordsStore } from '../../../agent/src/records/store.js';
import { onPath } from '../../lab/tools.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const PASS = 'correct horse battery staple';
// Synthetic patients (NHS numbers in the 999 test range): the needles.
const NEEDLES = ['Quillfeather', 'QUILLFEATHER', 'Zebedee', 'Marjoribanks', '9990001234', '9990005678', 'wheeze since Tuesday'];

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (loop mount of a disk image)';
  for (const c of ['mkfs.ext4', 'mount', 'umount', 'filefrag'])
    if (!onPath(c, `${process.env.PATH}:/usr/sbin:/sbin`)) return `not installed: ${c} (e2fsprogs, mount)`;
  return false;
}

const cli = (args: string[], input = '') =>
  spawnSync(process.execPath, ['--import', 'tsx', 'agent/src/main.ts', ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 60_000 });

/** Physical byte ranges of a file on the image (filefrag -v, 4 KiB blocks). */
function extents(path: string): { start: number; length: number }[] {
  const out = execFileSync('filefrag', ['-v', '-b4096', path], { encoding: 'utf8' });
  return [...out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)].map((m) => ({
    start: Number(m[1]) * 4096,
    length: (Number(m[2]) - Number(m[1]) + 1) * 4096,
  }));
}

function readRanges(image: string, ranges: { start: number; length: number }[]): Buffer {
  const fd = openSync(image, 'r');
  try {
    return Buffer.concat(
      ranges.map((r) => {
        const b = Buffer.alloc(r.length);
        readSync(fd, b, 0, r.length, r.start);
        return b;
      }),
    );
  } finally {
    closeSync(fd);
  }
}

/** Shannon entropy in bits per byte: ciphertext is close to 8, text and SQLite pages far below. */
function entropy(b: Buffer): number {
  const n = new Array<number>(256).fill(0);
  for (const x of b) n[x]!++;
  return -n.filter(Boolean).reduce((a, c) => a + (c / b.length) * Math.log2(c / b.length), 0);
}

/**
 * The decommissioning procedure (docs/clinical-safety.md) proven on a real file system: the records
 * store and capture queue, holding synthetic patients, live on an ext4 image mounted through a
 * loop device, as on a box's disk. Then the documented steps run (`records destroy-key --yes`, the
 * backup key and agent.db removed) and the raw image is searched for the patients' names, NHS
 * numbers and a note's words: none is there. Positive controls: the same search finds a deleted
 * plaintext file (so deleted data is findable by this method), and the records database's old blocks
 * are still on the image as ciphertext, which the destroyed key (kept by this test only) opens.
 */
describe('decommissioning: crypto-erase leaves a disk that greps clean', { skip: skipReason() }, () => {
  let dir: string;
  let image: string;
  let mnt: string;
  let cfg: string;
  let mounted = false;
  let keptKey: Buffer;
  let dbExtents: { start: number; length: number }[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'se-erase-'));
    image = join(dir, 'disk.img');
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('truncate', ['-s', '64M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', image]);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
    mounted = true;
    // The state dir on the "disk"; the run dir (runtime key) on RAM, as /run is on a box.
    cfg = join(dir, 'config.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        site: { deviceId: 'P81001-01', odsCode: 'P81001', practiceName: 'High Street Surgery' },
        paths: { stateDir: join(mnt, 'state'), runDir: join(dir, 'run'), root: join(dir, 'root') },
        records: { enabled: true },
        log: { level: 'silent' },
      }),
    );
  });

  after(() => {
    if (mounted) spawnSync('umount', [mnt]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('patients, captures and audit entries written through the real store; the image never holds them in plaintext', () => {
    const init = cli(['records', 'init', '--config', cfg], PASS + '\n');
    assert.equal(init.status, 0, init.stderr);
    keptKey = readRuntimeKey(join(dir, 'run', 'records.unlocked-key'))!;
    assert.equal(keptKey?.length, 32, 'the runtime key (RAM) for this test to keep');
    const dbPath = join(mnt, 'state', 'records.db');
    const store = RecordsStore.open(dbPath, { key: keptKey });
    const ins = store.db.prepare('INSERT INTO rec_patients (id, nhs_number, name, name_lc, summary, hash, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < 400; i++) {
      const name = i % 2 ? `Zebedee QUILLFEATHER ${i}` : `Ada Marjoribanks ${i}`;
      ins.run(
        `p${i}`,
        i % 2 ? '9990001234' : '9990005678',
        name,
        name.toLowerCase(),
        JSON.stringify({ name, allergies: ['penicillin'], problems: ['asthma'] }),
        `h${i}`,
        Date.now(),
      );
    }
    const q = CaptureQueue.open(store.db, Date.now);
    for (let i = 0; i < 30; i++) {
      const id = `01JBAKERASE0000000000000${String(i).padStart(2, '0')}`;
      q.create({
        id,
        kind: 'note',
        patientId: '9990001234',
        payload: { consultationType: 'telephone', history: `Zebedee Quillfeather: wheeze since Tuesday (${i})` },
        author: 'dr.a',
        role: 'clinician',
        device: 'test',
      });
      if (i % 3 === 0) q.markSent(id);
    }
    const audit = AuditLog.open(store.db, Date.now);
    for (let i = 0; i < 200; i++) audit.append({ user: 'dr.a', role: 'clinician', patientId: '9990001234', action: 'view.summary', device: 'test' });
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.close();
    // Accounts and settings (no patient data) are on the same disk.
    const agentDb = openStateDb(join(mnt, 'state', 'agent.db'));
    agentDb.close();
    writeFileSync(join(mnt, 'state', 'backup.key'), 'b'.repeat(43), { mode: 0o600 });
    // Positive control for the method: a plaintext file written, synced and deleted is still findable.
    writeFileSync(join(mnt, 'canary.txt'), 'PLAINTEXT-CANARY-7Q4M '.repeat(200));
    execFileSync('sync', ['-f', join(mnt, 'canary.txt')]);
    rmSync(join(mnt, 'canary.txt'));
    dbExtents = extents(dbPath);
    assert.ok(dbExtents.length > 0 && dbExtents.reduce((a, e) => a + e.length, 0) >= 100_000, 'the records database occupies blocks on the image');
    execFileSync('sync');
    const raw = readFileSync(image);
    for (const n of NEEDLES) assert.equal(raw.indexOf(n), -1, `"${n}" in plaintext on the disk while in use`);
  });

  it('after the documented decommission the raw image holds no patient data, only ciphertext the destroyed key alone would open', () => {
    const keyFile = join(mnt, 'state', 'records.key');
    const wrapped = readFileSync(keyFile);
    const destroy = cli(['records', 'destroy-key', '--yes', '--config', cfg]);
    assert.equal(destroy.status, 0, destroy.stderr);
    assert.match(destroy.stdout, /records key destroyed; cache deleted/);
    for (const f of ['records.key', 'records.db', 'records.db-wal', 'records.db-shm']) assert.ok(!existsSync(join(mnt, 'state', f)), `${f} removed`);
    rmSync(join(mnt, 'state', 'backup.key'));
    rmSync(join(mnt, 'state', 'agent.db'), { force: true });
    execFileSync('umount', [mnt]);
    mounted = false;

    const raw = readFileSync(image);
    for (const n of NEEDLES) {
      assert.equal(raw.indexOf(n), -1, `"${n}" found on the erased disk`);
      assert.equal(raw.indexOf(Buffer.from(n, 'utf16le')), -1, `"${n}" (UTF-16) found on the erased disk`);
    }
    assert.ok(raw.includes('PLAINTEXT-CANARY-7Q4M'), 'positive control: a deleted plaintext file is found by the same search');
    assert.equal(raw.indexOf(wrapped), -1, 'the wrapped records key was overwritten before it was deleted');

    // The database's old blocks are still there, as ciphertext: no SQLite header, ~8 bits of entropy per byte.
    const old = readRanges(image, dbExtents);
    assert.notEqual(old.subarray(0, 15).toString('latin1'), 'SQLite format 3', 'no plaintext database header');
    const e = entropy(old);
    assert.ok(e > 7.9, `ciphertext entropy ${e.toFixed(3)} bits/byte`);
    // And it is the data: with the key this test kept (the box no longer has it), the same blocks open.
    const carved = join(dir, 'carved.db');
    writeFileSync(carved, old);
    const store = RecordsStore.open(carved, { key: keptKey });
    try {
      const n = store.db.prepare("SELECT count(*) AS n FROM rec_patients WHERE name LIKE '%QUILLFEATHER%'").get() as { n: number };
      assert.equal(n.n, 200, 'the carved ciphertext holds the patients: only the destroyed key made it readable');
    } finally {
      store.close();
    }
    process.stdout.write(
      `# decommission: ${raw.length >> 20} MiB image, ${NEEDLES.length} needles, 0 found; records blocks ${old.length} bytes at ${e.toFixed(3)} bits/byte\n`,
    );
  });
});
