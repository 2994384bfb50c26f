// Stands in, in the agent bundle (scripts/build-dist, --alias), for fastify's optional parts the agent
// never uses, so their code (and Ajv's) is not in the bundle's source, which Node keeps in memory:
// - @fastify/ajv-compiler, @fastify/fast-json-stringify-compiler: route schema compilers; the agent
//   gives fastify its own, which refuse a schema (agent/src/web/app.ts, noRouteSchemas);
// - light-my-request: fastify's inject(), used by the tests, which run the sources, not the bundle.
// Calling any of them says so.
'use strict';
module.exports = function notInBundle() {
  throw new Error('not in the agent bundle (scripts/dist-shims/not-in-bundle.cjs): route schemas and inject() are for the sources only');
};
