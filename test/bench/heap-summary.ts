/**
 * Summarise a V8 heap snapshot (from `HEAP_SNAPSHOT=1 make bench-memory`): self size by node type
 * and by constructor/name, largest first, and the heap by script (compiled code, bytecode and
 * function metadata attributed to the file they came from). Usage: heap-summary.ts FILE [TOP]
 */
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) throw new Error('usage: heap-summary.ts FILE.heapsnapshot [TOP]');
const TOP = Number(process.argv[3] ?? 25);
const snap = JSON.parse(readFileSync(file, 'utf8')) as {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
};
const nf = snap.snapshot.meta.node_fields;
const ef = snap.snapshot.meta.edge_fields;
const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number];
const [ETYPE, ENAME, ETO] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f)) as [number, number, number];
const types = snap.snapshot.meta.node_types[0];
const etypes = snap.snapshot.meta.edge_types[0];
const N = nf.length;
const byType = new Map<string, number>();
const byName = new Map<string, { size: number; count: number }>();
const scriptOf = new Map<number, string>();
let total = 0;
// Pass 1: sizes; remember which SharedFunctionInfo points at which script (edge "script").
let e = 0;
for (let i = 0; i < snap.nodes.length; i += N) {
  const type = types[snap.nodes[i + TYPE]!]!;
  const name = snap.strings[snap.nodes[i + NAME]!]!;
  const size = snap.nodes[i + SIZE]!;
  total += size;
  byType.set(type, (byType.get(type) ?? 0) + size);
  const key = `${type}:${type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(strings)' : name.slice(0, 60)}`;
  const g = byName.get(key) ?? { size: 0, count: 0 };
  g.size += size;
  g.count++;
  byName.set(key, g);
  const edges = snap.nodes[i + EDGES]!;
  for (let k = 0; k < edges; k++, e += ef.length) {
    if (etypes[snap.edges[e + ETYPE]!] === 'internal' && snap.strings[snap.edges[e + ENAME]!] === 'script') scriptOf.set(i, String(snap.edges[e + ETO]));
  }
}
const mb = (b: number) => `${(b / 1048576).toFixed(2)} MB`;
console.log(`heap snapshot ${file}: ${mb(total)} in ${snap.nodes.length / N} objects`);
console.log('\nby type:');
for (const [t, s] of [...byType].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${mb(s).padStart(10)}  ${t}`);
console.log(`\nby constructor / name (top ${TOP}):`);
for (const [k, g] of [...byName].sort((a, b) => b[1].size - a[1].size).slice(0, TOP))
  console.log(`  ${mb(g.size).padStart(10)}  ${String(g.count).padStart(7)}x  ${k}`);
// Scripts: the Script node's name is its URL; functions compiled from it hang off their SharedFunctionInfo.
const scriptName = new Map<string, string>();
for (const [, to] of scriptOf) {
  const idx = Number(to);
  scriptName.set(to, snap.strings[snap.nodes[idx + NAME]!]!);
}
const perScript = new Map<string, number>();
for (const [sfi, to] of scriptOf) {
  const name = (scriptName.get(to) ?? '?').replace(/^.*node_modules\//, 'node_modules/').replace(/^file:\/\/.*\/dist\//, 'dist/');
  const pkg = name.startsWith('node_modules/')
    ? name
        .split('/')
        .slice(0, name.split('/')[1]!.startsWith('@') ? 3 : 2)
        .join('/')
    : name;
  perScript.set(pkg, (perScript.get(pkg) ?? 0) + snap.nodes[sfi + SIZE]!);
}
console.log('\nfunction metadata (SharedFunctionInfo self size) by script / package:');
for (const [k, s] of [...perScript].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${mb(s).padStart(10)}  ${k}`);

// Who holds the most objects of one kind (e.g. RETAINERS=Buffer): the direct referrers, by their name, with the edge name.
const want = process.env.RETAINERS;
if (want) {
  const firstEdge: number[] = [];
  let acc = 0;
  for (let i = 0; i < snap.nodes.length; i += N) (firstEdge.push(acc), (acc += snap.nodes[i + EDGES]! * ef.length));
  const by = new Map<string, number>();
  for (let n = 0, i = 0; i < snap.nodes.length; i += N, n++) {
    const from = `${types[snap.nodes[i + TYPE]!]}:${snap.strings[snap.nodes[i + NAME]!]!.slice(0, 50)}`;
    for (let k = 0, x = firstEdge[n]!; k < snap.nodes[i + EDGES]!; k++, x += ef.length) {
      const to = snap.edges[x + ETO]!;
      if (snap.strings[snap.nodes[to + NAME]!] !== want || etypes[snap.edges[x + ETYPE]!] === 'weak') continue;
      const et = etypes[snap.edges[x + ETYPE]!];
      const label = `${from} -[${et === 'element' || et === 'hidden' ? et : snap.strings[snap.edges[x + ENAME]!]}]->`;
      by.set(label, (by.get(label) ?? 0) + 1);
    }
  }
  console.log(`\nreferrers of ${want}:`);
  for (const [k, c] of [...by].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${String(c).padStart(7)}x  ${k}`);
}
