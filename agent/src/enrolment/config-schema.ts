import { Bool, Obj, Str } from '../config/types.js';

/** `enrolment:` section (docs/image.md, "Enrolment"). The appliance image's seed config sets required: true. */
export const EnrolmentSection = Obj({
  required: Bool(false, 'Show "Not enrolled" on the status page and LED until a valid ICB device identity is installed (the image sets true)'),
  csrPath: Str('/var/lib/surgery-edge/enrol/device.csr', 'Where `surgery-edge enrol csr` writes the certificate signing request for the ICB CA'),
});
