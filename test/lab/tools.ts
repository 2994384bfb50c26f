/**
 * What the namespace lab needs from the machine, checked in milliseconds before anything starts,
 * so a missing tool is named with the command that installs it (never a 30 s timeout later).
 */
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';

/** Each command the lab and the agent's Linux platform run, and the Debian package that has it. */
export const LAB_TOOLS: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  nft: 'nftables',
  conntrack: 'conntrack',
  ping: 'iputils-ping',
  sysctl: 'procps',
  python3: 'python3', // lab.delay(): the userspace delay line (no netem in this kernel)
};

const SETUP = resolve(import.meta.dirname, '../../scripts/setup-system');

/** Finds a command on PATH (plus the sbin dirs root's PATH may lack). */
export function onPath(cmd: string, path = process.env.PATH ?? ''): boolean {
  for (const dir of [...path.split(':'), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

/** The missing tools as one message naming packages and the fix, or false when all are there. */
export function missingTools(tools: Readonly<Record<string, string>> = LAB_TOOLS, path?: string): string | false {
  const missing = Object.entries(tools).filter(([cmd]) => !onPath(cmd, path));
  if (missing.length === 0) return false;
  const what = missing.map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`).join(', ');
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  return `not installed: ${what}; run ${SETUP} as root (or apt-get install ${pkgs})`;
}
