import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { REPO } from '../../helpers/update-fixture.js';

/**
 * `make deb`: build the package (uncompressed, for speed), read it back with dpkg-deb, run lintian,
 * install it with the real dpkg into a throwaway root (maintainer scripts honour DPKG_ROOT), run
 * the installed agent's CLI on its own Node and native addons, then remove and purge it.
 */
const have = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !have('dpkg-deb') ? 'dpkg-deb not installed' : process.getuid?.() !== 0 ? 'needs root (dpkg --root writes files owned by root)' : false;
const arch = process.arch === 'x64' ? 'amd64' : 'arm64';
const narch = process.arch === 'x64' ? 'x64' : 'arm64';
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
let deb: string;

describe('the .deb package', { skip }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'se-deb-'));
    const b = spawnSync(join(REPO, 'scripts/build-dist'), ['dist/surgery-edge.mjs'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    deb = execFileSync(join(REPO, 'image/deb/build-deb.sh'), [arch, dir], { env: { ...process.env, DEB_COMPRESS: 'none' }, encoding: 'utf8' }).trim();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has the control fields and only the run-time files', () => {
    const field = (f: string) => execFileSync('dpkg-deb', ['--field', deb, f], { encoding: 'utf8' }).trim();
    assert.equal(field('Package'), 'surgery-edge');
    assert.equal(field('Version'), version);
    assert.equal(field('Architecture'), arch);
    assert.match(field('Depends'), /nftables/);
    const listing = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter(Boolean);
    const paths = listing.map((l) =>
      l
        .split(/\s+/)
        .slice(5)
        .join(' ')
        .replace(/ -> .*/, ''),
    );
    for (const p of [
      './opt/surgery-edge/bin/node',
      './opt/surgery-edge/dist/surgery-edge.mjs',
      './opt/surgery-edge/package.json',
      `./opt/surgery-edge/node_modules/better-sqlite3/prebuilds/linux-${narch}.node`,
      `./opt/surgery-edge/node_modules/better-sqlite3-multiple-ciphers/prebuilds/linux-${narch}.node`,
      './opt/surgery-edge/node_modules/fastify/package.json',
      './opt/surgery-edge/node_modules/mqtt/package.json',
      './lib/systemd/system/surgery-edge.service',
      './usr/bin/surgery-edge',
      './usr/share/doc/surgery-edge/copyright',
    ]) {
      assert.ok(paths.includes(p), `missing ${p}`);
    }
    for (const l of listing) assert.match(l, /root\/root/, `owned by root: ${l}`);
    const bad = paths.filter(
      (p) =>
        /node_modules\/(tsx|esbuild|@esbuild|typescript|@types|playwright-core|node-linux-)/.test(p) || /prebuilds\/(?!linux-)./.test(p) || /\/deps\//.test(p),
    );
    assert.deepEqual(bad, [], 'no dev tools, no other platforms, no addon sources');
  });

  it('passes lintian (beyond the documented overrides)', { skip: have('lintian') ? false : 'lintian not installed' }, () => {
    const r = spawnSync('lintian', ['--no-tag-display-limit', deb], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const tags = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l) && !/uses-no-compression/.test(l));
    assert.deepEqual(tags, []);
  });

  it('installs with dpkg into a throwaway root, runs there, and removes and purges cleanly', () => {
    const root = join(dir, 'root');
    const admin = join(root, 'var/lib/dpkg');
    for (const d of ['info', 'updates', 'triggers']) mkdirSync(join(admin, d), { recursive: true });
    writeFileSync(join(admin, 'status'), '');
    const dpkg = (...a: string[]) =>
      execFileSync('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', '--force-not-root', '--log=/dev/null', ...a], {
        env: { ...process.env, DPKG_ROOT: root },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    dpkg('--install', deb);
    assert.equal(statSync(join(root, 'etc/surgery-edge')).mode & 0o777, 0o750);
    assert.equal(statSync(join(root, 'var/lib/surgery-edge')).mode & 0o777, 0o700);
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants/surgery-edge.service');
    assert.ok(lstatSync(wants).isSymbolicLink());
    assert.equal(readlinkSync(wants), '/lib/systemd/system/surgery-edge.service');
    assert.match(
      readFileSync(join(root, 'lib/systemd/system/surgery-edge.service'), 'utf8'),
      /^ExecStart=\/opt\/surgery-edge\/bin\/node (--\S+ )*\/opt\/surgery-edge\/dist\/surgery-edge.mjs run/m,
    );

    // The installed tree alone runs the agent's CLI: its own Node, the pruned node_modules, both native addons.
    const node = join(root, 'opt/surgery-edge/bin/node');
    const mjs = join(root, 'opt/surgery-edge/dist/surgery-edge.mjs');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
    const run = (args: string[], input = '') => spawnSync(node, [mjs, ...args], { input, encoding: 'utf8', env, cwd: '/' });
    assert.equal(run(['version']).stdout.trim(), version);
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, stringify({ paths: { stateDir: join(dir, 'state'), runDir: join(dir, 'run') }, log: { level: 'silent' } }));
    const user = run(['user', 'add', 'ops', '--role', 'admin', '--config', cfg], 'correct horse battery staple\n');
    assert.equal(user.status, 0, `state db (better-sqlite3): ${user.stderr}`);
    const rec = run(['records', 'init', '--config', cfg], 'a long records passphrase\n');
    assert.equal(rec.status, 0, `records cache (better-sqlite3-multiple-ciphers): ${rec.stderr}`);
    assert.ok(existsSync(join(dir, 'state', 'agent.db')));

    dpkg('--remove', 'surgery-edge');
    assert.equal(existsSync(join(root, 'opt/surgery-edge/bin/node')), false);
    assert.equal(existsSync(wants), false);
    assert.ok(existsSync(join(root, 'var/lib/surgery-edge')), 'remove keeps state');
    dpkg('--purge', 'surgery-edge');
    assert.equal(existsSync(join(root, 'var/lib/surgery-edge')), false, 'purge deletes state');
    assert.equal(existsSync(join(root, 'etc/surgery-edge')), false);
  });
});
