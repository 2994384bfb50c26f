/**
 * The layering, enforced in `make lint` (and so in `make test`). docs/architecture.md explains it.
 *
 *   contract/, common/   leaves: shared by the agent and the fleet, import nothing from either
 *   agent/src/core       imports nothing of the agent (capabilities extend its types by augmentation)
 *   agent/src/platform   only core
 *   agent/src/<cap>      a capability: core, platform, config, web, auth; another capability only
 *                        through its events.ts / config-schema.ts (types and events), never its code
 *   agent/src/cli, agent.ts, capabilities.ts, main.ts   the composition root: may import anything
 *   two acts for the whole box sit with the composition root: setup/ (first-run commissioning writes
 *   the config, the first account and the records key) and backup/restore.ts + backup/cli.ts (a
 *   replacement box restores every capability's data before any capability runs)
 *   fleet/               never agent internals; the one published surface is agent/src/config/public.ts
 */
const CAPABILITIES = '(uplinks|failover|cellular|wifi|telephony|records|telemetry|update|enrolment|drills|status|backup)';
/** The whole-box acts above: they run before or instead of the capabilities, so they may use their stores. */
const WHOLE_BOX = '^agent/src/(setup/|backup/(restore|cli)[.]ts$)';

module.exports = {
  forbidden: [
    {
      name: 'no-esm-node-http',
      comment:
        "Take node:http's and node:util's values from common/node-builtins.ts (`import type` is fine): an ESM import reads their lazy exports (node:http's load undici, web streams and http2, ~8.8 MB RSS).",
      severity: 'error',
      from: { path: '^(agent|common)/', pathNot: '^common/node-builtins[.]ts$' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(http|util)$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'An import circle: split the shared part into its own file (see STYLE.md).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'contract-is-a-leaf',
      comment: 'contract/ is shared by the agent and the fleet and imports neither.',
      severity: 'error',
      from: { path: '^contract/' },
      to: { path: '^(agent|fleet|common|test)/' },
    },
    {
      name: 'common-is-a-leaf',
      comment: 'common/ holds helpers both sides use; it may use contract/ but nothing of the agent or fleet.',
      severity: 'error',
      from: { path: '^common/' },
      to: { path: '^(agent|fleet|test)/' },
    },
    {
      name: 'core-imports-nothing',
      comment: 'core/ is the kernel: capabilities and platform extend its types by module augmentation.',
      severity: 'error',
      from: { path: '^agent/src/core/' },
      to: { path: '^agent/src/', pathNot: '^agent/src/core/' },
    },
    {
      name: 'platform-only-core',
      comment: 'platform/ wraps the host (ip, nft, tpm, modem): it knows nothing of capabilities.',
      severity: 'error',
      from: { path: '^agent/src/platform/' },
      to: { path: '^agent/src/', pathNot: '^agent/src/(core|platform)/' },
    },
    {
      name: 'capabilities-only-through-contract',
      comment: 'A capability uses another only through contract/ types and bus events (its events.ts) or its config schema.',
      severity: 'error',
      from: { path: `^agent/src/${CAPABILITIES}/`, pathNot: WHOLE_BOX },
      to: {
        path: `^agent/src/${CAPABILITIES}/`,
        pathNot: ['^agent/src/$1/', `^agent/src/${CAPABILITIES}/(events|config-schema)[.]ts$`],
      },
    },
    {
      name: 'capabilities-not-the-composition-root',
      comment: 'Capabilities never reach up into the CLI or the agent that composes them.',
      severity: 'error',
      from: { path: `^agent/src/(core|platform|config|web|auth|setup|${CAPABILITIES})/` },
      to: { path: '^agent/src/(cli/|agent[.]ts|capabilities[.]ts|main[.]ts)' },
    },
    {
      name: 'capabilities-not-the-whole-box-acts',
      comment: 'Commissioning (setup/) and restore use the capabilities, never the other way round.',
      severity: 'error',
      from: { path: `^agent/src/(core|platform|config|web|auth|${CAPABILITIES})/`, pathNot: WHOLE_BOX },
      to: { path: WHOLE_BOX },
    },
    {
      name: 'fleet-never-imports-agent-internals',
      comment: 'The fleet shares contract/ and common/ with the agent; of the agent it may use only the published config package.',
      severity: 'error',
      from: { path: '^fleet/' },
      to: { path: '^agent/', pathNot: '^agent/src/config/public[.]ts$' },
    },
    {
      name: 'production-never-imports-tests',
      severity: 'error',
      from: { path: '^(agent|fleet|contract|common)/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6', 'cjs'],
  },
};
