import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

/** `enrolment:` section (docs/image.md, "Enrolment"). The appliance image's seed config sets required: true. */
export const EnrolmentSection = Obj({
  required: Bool(false, 'Show "Not enrolled" on the status page and LED until a valid ICB device identity is installed (the image sets true)'),
  csrPath: Str('/var/lib/surgery-edge/enrol/device.csr', 'Where `surgery-edge enrol csr` writes the certificate signing request for the ICB CA'),
  keyProtection: Type.Union([Type.Literal('auto'), Type.Literal('tpm'), Type.Literal('file')], {
    default: 'auto',
    description:
      'How `enrol csr` keeps the new device key: auto = sealed to the TPM 2.0 where one is present (/dev/tpmrm0), else a 0600 file; tpm = refuse ' +
      'without a TPM; file = always a 0600 PEM file. Existing keys are used as they are',
  }),
  tpmTcti: Str('', 'TPM2TOOLS_TCTI override for the device key (empty: device:/dev/tpmrm0); tests use the swtpm simulator'),
  claimUrl: Str(
    '',
    "HTTPS base URL of the ICB fleet's enrolment endpoint (e.g. https://fleet.icb.example:8443). Set: an unenrolled box shows a one-time claim code " +
      'and asks the fleet to sign its CSR once an ICB engineer claims it. Empty: enrolment stick only',
  ),
  claimCaPath: Str(
    '/usr/share/surgery-edge/icb-ca.crt',
    "PEM CA the enrolment endpoint's certificate must chain to (the ICB CA, shipped in the image); the only CA trusted for claiming",
  ),
  claimPollMs: Ms(15_000, 'How often a box waiting to be claimed asks the fleet', 200),
  claimStatePath: Str('/var/lib/surgery-edge/enrol/claim.json', 'The pending claim (code, request id); never the private key'),
  tpmPcrs: Str(
    '',
    'PCR selection a new TPM-sealed device key is bound to (empty: this TPM only, so signed updates that change the boot loader do not un-enrol the box)',
  ),
});
