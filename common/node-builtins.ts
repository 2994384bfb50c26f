/**
 * Node built-ins the agent loads the way `require()` does, not with an ESM `import ... from`.
 *
 * An ESM import of a built-in builds the module's whole namespace, and that reads every lazy export.
 * In Node 24 `node:http` has three lazy exports backed by undici (`WebSocket`, `CloseEvent`,
 * `MessageEvent`): reading them loads undici, Node's web streams and http2, none of which the agent
 * uses. On a bare node with the unit's flags, `import 'node:http'` costs 8.8 MB more RSS than
 * `require('node:http')` (60.9 against 52.1 MB); `node:util`'s lazy exports cost ~1 MB the same way.
 * `process.getBuiltinModule` returns the object `require()` returns, with the lazy exports untouched.
 * Types still come from `import type ... from 'node:http'`, which the compiler erases.
 * test/unit/dist.test.ts checks the built bundle loads none of undici, web streams or http2
 * (docs/architecture.md, memory).
 */
export const http = process.getBuiltinModule('node:http');
export const util = process.getBuiltinModule('node:util');
