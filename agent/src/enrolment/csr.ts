import { execFileSync } from 'node:child_process';
import { AppError } from '../../../common/errors.js';

/**
 * A CSR for `cn` from a PEM private key, with openssl req reading the key from a pipe. OpenSSL
 * 3.0's req has no "-" for stdin, and Node's stdio pipes are socketpairs, which /dev/stdin cannot
 * open (ENXIO): `cat` hands openssl a real pipe. The key never touches a file, so a TPM-sealed key
 * is never on disk in the clear.
 */
export function csrFromKey(pem: string, cn: string): string {
  try {
    return execFileSync('sh', ['-c', 'cat | exec openssl req -new -key /dev/stdin -subj "$1" -sha256', 'sh', `/CN=${cn}`], {
      input: pem,
      stdio: ['pipe', 'pipe', 'pipe'],
    }).toString();
  } catch (e) {
    throw new AppError(
      'COMMAND_FAILED',
      `openssl req: ${String((e as { stderr?: Buffer }).stderr ?? e)
        .trim()
        .slice(0, 300)}`,
    );
  }
}
