import type { GpConnectOptions } from '../../agent/src/records/gpconnect/client.js';

/** GP Connect consumer options for talking to the test FHIR server. */
export function gpcOptions(base: string): GpConnectOptions {
  return {
    baseUrl: base,
    sspUrl: '',
    fromAsid: '200000000359',
    toAsid: '918999198738',
    jwtIssuer: 'https://surgery-edge.test',
    organizationOds: 'A00000',
    organizationName: 'Test Surgery',
    practitionerId: 'se-sync',
    practitionerSdsUserId: '',
    practitionerFamily: 'Sync',
    practitionerGiven: 'Service',
    deviceName: 'surgery-edge',
    deviceVersion: 'test',
    includeAppointments: true,
    requestTimeoutMs: 5000,
  };
}
