/** `fleet --help` and each subcommand's help: one table, so the usage lines and the help never disagree. */
export const HELP: Record<string, string> = {
  '': `usage: fleet [--config FILE] [--data-dir DIR] <command> [options]

The ICB fleet manager: ingests every appliance's MQTT telemetry, raises alerts, runs config
rollouts and serves the dashboard. Without --config it runs the embedded set-up: SQLite and a
local mosquitto (with its own CA) under ./fleet-data.

commands:
  run                 run the fleet manager (the default)
  user                manage dashboard accounts (list, add, disable, enable, remove,
                      reset-password, set-role, unlock, reset-totp); every change is audited
  help [COMMAND]      this help, or a command's

options:
  --config FILE       fleet config (YAML; docs/fleet.md lists every field)
  --data-dir DIR      overrides dataDir from the config
  -h, --help          help (after a command: that command's help)

exit codes: 0 ok, 1 failed (the reason on stderr), 2 usage error`,
  run: `usage: fleet run [--config FILE] [--data-dir DIR] [--port N]

Starts the fleet manager and prints the dashboard and broker addresses. On the first start (no
accounts yet) it creates the icb-admin "admin" with a random password, printed once. Stops
cleanly on SIGTERM or SIGINT.

  --port N            dashboard port (overrides http.port; 0 picks a free one)`,
  user: `usage: fleet user <action> [args] [--config FILE]

  list                                   accounts with role, practice, state and last sign-in
  add NAME --role ROLE [--practice ODS]  new account; password on stdin (10+ characters)
  reset-password NAME                    new password from stdin; unlocks; ends their sessions
  set-role NAME --role ROLE [--practice ODS]   ends their sessions
  disable NAME | enable NAME             a disabled account cannot sign in; its sessions end
  unlock NAME                            clear a lockout after too many wrong passwords or codes
  reset-totp NAME                        remove their TOTP second factor and recovery codes (lost phone); ends their sessions
  remove NAME                            delete the account; its sessions end

roles: icb-admin (everything), icb-viewer (read everything), practice-manager (read one
practice: needs --practice ODS). The last enabled icb-admin cannot be removed, disabled or
demoted. Every change is written to the audit log as "cli:<your login name>".`,
};

export function help(cmd = ''): string {
  return `${HELP[cmd] ?? HELP['']}\n`;
}
