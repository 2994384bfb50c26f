#!/usr/bin/env node
// Counts import circles among the project's own TypeScript files (relative imports only), per top-level
// folder. A circle is a strongly connected set of two or more files (or a file importing itself).
// Usage: scripts/node scripts/import-circles.mjs [--values] [dir ...]   (--values: ignore `import type`)
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const args = process.argv.slice(2);
const valuesOnly = args.includes('--values');
const dirs = args.filter((a) => !a.startsWith('--'));
const roots = dirs.length ? dirs : ['agent', 'fleet', 'contract', 'common'];
const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');

function walk(d, out) {
  for (const n of readdirSync(d)) {
    if (n === 'node_modules' || n.startsWith('.')) continue;
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.tsx?$/.test(n) && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
function deps(file) {
  const src = readFileSync(file, 'utf8');
  const out = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4];
    if (valuesOnly && m[2]) continue;
    // `import { type A, type B }` only: erased too.
    if (valuesOnly && m[3] && /^\s*(import|export)\s*\{\s*(type\s+\w+(\s+as\s+\w+)?\s*,?\s*)+\}/.test(m[0].trim())) continue;
    const base = resolve(dirname(file), spec);
    const cands = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), base + '.ts', join(base, 'index.ts'), base];
    const hit = cands.find((c) => existsSync(c) && statSync(c).isFile());
    if (hit) out.push(hit);
  }
  return out;
}

function sccs(nodes, edges) {
  let i = 0;
  const idx = new Map(), low = new Map(), on = new Set(), st = [], res = [];
  const strong = (v) => {
    idx.set(v, i); low.set(v, i); i++; st.push(v); on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do { w = st.pop(); on.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1 || (edges.get(v) ?? []).includes(v)) res.push(c);
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  return res;
}

let total = 0;
for (const r of roots) {
  const files = walk(join(repo, r), []);
  const edges = new Map(files.map((f) => [f, deps(f)]));
  const circles = sccs(files, edges);
  total += circles.length;
  console.log(`${r}: ${circles.length} circle(s)${valuesOnly ? ' (value imports only)' : ''}`);
  for (const c of circles) console.log('  ' + c.map((f) => relative(repo, f)).sort().join(' <-> '));
}
process.exitCode = total > 0 && process.env.CIRCLES_STRICT ? 1 : 0;
