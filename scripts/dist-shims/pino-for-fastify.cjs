// Stands in for pino in the agent bundle (scripts/build-dist, --alias). fastify is given the agent's
// own logger (agent/src/web/app.ts, loggerInstance), and then takes only two things from pino
// (fastify/lib/logger-pino.js): `symbols.serializersSym`, to look for a pino logger's serializers
// (the agent's logger has none), and `stdSerializers.err`, handed to the logger's child(), which the
// agent's logger ignores (it keeps primitive fields only). The real pino loads sonic-boom,
// thread-stream and worker_threads when it is required: ~1 MB of the resident agent for nothing.
// pino.destination() (fastify's `logger.file` option, not used) says so instead of writing.
'use strict';
module.exports = {
  symbols: { serializersSym: Symbol('pino.serializers') },
  stdSerializers: {
    err: (e) => (e instanceof Error ? { type: e.name, message: e.message, stack: e.stack } : e),
  },
  destination() {
    throw new Error('pino.destination is not in the agent bundle (scripts/dist-shims/pino-for-fastify.cjs): the LAN server logs through the agent logger');
  },
};
