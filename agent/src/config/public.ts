/**
 * The agent's config package as the fleet may use it: the same validators a box runs on its own
 * config file, so a template the fleet saves is one the box will accept. This is the only agent
 * module the fleet imports (enforced by .dependency-cruiser.cjs); everything else they share sits
 * in contract/ and common/.
 */
export { validateConfig, type ConfigProblem } from './load.js';
export { isSecretKey, REDACTED } from './redact.js';
export { remoteConfigProblems } from './remote-rules.js';
