import { readFileSync } from 'node:fs';

/** Read once at start from package.json so the birth message and `--version` agree with the build. */
function readVersion(): string {
  // From source (agent/src/version.ts) or from the bundle (dist/surgery-edge.mjs).
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'surgery-edge' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
