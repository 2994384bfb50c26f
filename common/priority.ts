/**
 * Nice value for bulk background work the agent starts (restic backups, casync rebuilding a slot
 * from a delta): on a 2- or 4-core box these can use every core for minutes, while the agent's own
 * event loop serves the records viewer and the status page and runs failover. Niced, they take
 * whatever CPU the agent leaves (docs/architecture.md, "Background work").
 *
 * Through coreutils `nice`, which execs the command (same pid, so kill and pid tracking work), and
 * not by renicing the pid after the spawn: Linux nice is per thread, and a Go program such as restic
 * has started threads of its own by the time spawn() returns, which would keep the old priority.
 */
export const BACKGROUND_NICE = 10;

/** [command, args] to spawn `cmd args` at BACKGROUND_NICE. */
export function niced(cmd: string, args: readonly string[]): [string, string[]] {
  return ['nice', ['-n', String(BACKGROUND_NICE), cmd, ...args]];
}

/** `nice` could not run the command itself (exit 127 with "No such file"): the same as ENOENT from a direct spawn. */
export function nicedNotFound(code: number | null, stderr: string): boolean {
  return code === 127 && /^nice: .*No such file or directory/m.test(stderr);
}
