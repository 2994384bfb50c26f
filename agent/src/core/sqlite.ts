import type DatabaseCtor from 'better-sqlite3-multiple-ciphers';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * better-sqlite3-multiple-ciphers' Database constructor (both the state database and the encrypted
 * records store use it), loaded from the package's entry point for this platform, e.g.
 * `better-sqlite3-multiple-ciphers/linux-x64`. Its default entry finds the prebuilt addon by asking
 * `process.report.getReport()` whether the C library is musl: that builds a whole diagnostic report
 * (every loaded library, every handle) and loads Node's report, cluster and worker modules, about
 * 1 MB of the resident agent for one boolean (docs/architecture.md, memory). The image is Debian
 * (glibc); where a musl loader is present, or the platform has no prebuilt entry, the default entry
 * is used as before.
 */
function load(): typeof DatabaseCtor {
  const require = createRequire(import.meta.url);
  const prebuilt = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') && !muslLoaderPresent();
  return require(prebuilt ? `better-sqlite3-multiple-ciphers/linux-${process.arch}` : 'better-sqlite3-multiple-ciphers') as typeof DatabaseCtor;
}

function muslLoaderPresent(): boolean {
  try {
    return readdirSync('/lib').some((f) => f.startsWith('ld-musl-'));
  } catch {
    return false;
  }
}

export const Sqlite = load();
