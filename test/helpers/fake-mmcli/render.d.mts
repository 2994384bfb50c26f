export interface FakeMmcliResult {
  code: number;
  stdout: string;
  stderr: string;
  state: Record<string, unknown>;
}
export function defaultState(): Record<string, unknown>;
export function runFakeMmcli(argv: string[], state: Record<string, unknown>, now?: number): FakeMmcliResult;
