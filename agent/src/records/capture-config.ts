import { Ms, Obj, Str } from '../config/types.js';

/**
 * Config section records.capture (offline capture store-and-forward). Its own file so the config
 * schema does not pull the database code in.
 */
export const CaptureSection = Obj(
  {
    upstreamUrl: Str('', 'Endpoint offline captures are POSTed to (JSON, Idempotency-Key header). Empty: keep them queued'),
    authToken: Str('', 'Bearer token sent to the capture endpoint, when it needs one'),
    timeoutMs: Ms(10_000, 'Per-request timeout when forwarding one capture', 100),
    retryInitialMs: Ms(2_000, 'First retry delay after the endpoint was unreachable', 10),
    retryMaxMs: Ms(300_000, 'Longest retry delay while the endpoint stays unreachable', 10),
  },
  'Offline capture store-and-forward (arrivals, notes, call log)',
);
