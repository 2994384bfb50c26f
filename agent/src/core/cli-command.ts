/**
 * One subcommand of `surgery-edge`. Its own file so each command module imports only this type,
 * not the registry that imports every command (that was an import circle, issue 18).
 */
export interface CliCommand {
  summary: string;
  run(args: string[]): Promise<number>;
}
