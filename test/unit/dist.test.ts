import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

// The appliance runs the esbuild bundle, not the sources through tsx: prove the bundle builds and
// answers like the source CLI does (version from package.json, config validation, exit codes).
describe('dist bundle', () => {
  it('builds and runs version and check-config on plain Node 24', () => {
    const dir = mkdtempSync(join(tmpdir(), 'se-dist-'));
    try {
      const out = join(process.cwd(), 'dist', 'surgery-edge.test.mjs');
      const meta = join(dir, 'meta.json');
      const b = spawnSync('scripts/build-dist', [out, `--metafile=${meta}`], { encoding: 'utf8' });
      assert.equal(b.status, 0, b.stderr);
      // npm packages are bundled; left outside: the one native SQLite addon (both databases use it;
      // agent/src/core/sqlite.ts requires its platform entry at run time, checked below by opening the
      // state database), systeminformation (imported by `surgery-edge hardware` only) and ws's optional
      // native helpers (not installed: ws falls back).
      const outputs = (JSON.parse(readFileSync(meta, 'utf8')) as { outputs: Record<string, { imports: { path: string; external?: boolean }[] }> }).outputs;
      const external = new Set(Object.values(outputs).flatMap((o) => o.imports.filter((i) => i.external && !isBuiltin(i.path)).map((i) => i.path)));
      assert.deepEqual([...external].sort(), ['bufferutil', 'systeminformation', 'utf-8-validate']);
      const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
      const v = spawnSync(process.execPath, [out, 'version'], { encoding: 'utf8' });
      assert.equal(v.stdout.trim(), pkg.version, v.stderr);
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, 'failover: { holdDownMs: -1 }\n');
      const c = spawnSync(process.execPath, [out, 'check-config', bad], { encoding: 'utf8' });
      assert.equal(c.status, 2);
      assert.match(c.stderr, /\/failover\/holdDownMs/);
      // The SQLite addon loads from the bundle: `user list` opens (creates) the state database.
      const stateCfg = join(dir, 'state.yaml');
      writeFileSync(stateCfg, `paths:\n  stateDir: ${join(dir, 'state')}\n`);
      const u = spawnSync(process.execPath, [out, 'user', 'list', '--config', stateCfg], { encoding: 'utf8' });
      assert.equal(u.status, 0, u.stderr);
      assert.ok(existsSync(join(dir, 'state', 'agent.db')));
      // Memory (docs/architecture.md): node:http loaded through an ESM import reads its undici-backed
      // lazy exports and so loads undici, web streams and http2 (~8.8 MB RSS), and fastify requires
      // http2 for an option the agent never sets. The bundle must load none of them.
      const probe = join(dir, 'loaded.mjs');
      writeFileSync(probe, "process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(process.moduleLoadList) + '\\n'));\n");
      const l = spawnSync(process.execPath, ['--import', probe, out, 'version'], { encoding: 'utf8' });
      assert.equal(l.status, 0, l.stderr);
      const loaded = JSON.parse(/^LOADED (.*)$/m.exec(l.stderr)?.[1] ?? '[]') as string[];
      assert.ok(loaded.includes('NativeModule https'), 'the probe sees the modules the bundle loads');
      assert.deepEqual(
        loaded.filter((m) => /undici|webstreams|http2/.test(m)),
        [],
      );
      rmSync(out, { force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
