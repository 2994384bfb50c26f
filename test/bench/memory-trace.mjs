// Diagnosis only (MEM_TRACE=1 make bench-memory): preloaded into the agent, writes process.memoryUsage()
// and the V8 heap spaces to $MEM_TRACE_FILE every 5 s, so RSS can be split into V8 heap, external and native.
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const file = process.env.MEM_TRACE_FILE;
const mb = (b) => Math.round(b / 104857.6) / 10;
if (file) {
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { committed: mb(s.physical_space_size), used: mb(s.space_used_size) }]));
    writeFileSync(file, JSON.stringify({ rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), spaces }));
  }, 5000).unref();
}
