import type { Config } from '../config/schema.js';
import { escapeHtml as e } from '../web/html.js';

export interface WizardValues {
  username: string;
  password: string;
  password2: string;
  labels: Record<string, string>;
  passphrase: string;
  passphrase2: string;
  tpm: boolean;
  understood: boolean;
  gpBase: string;
  gpSsp: string;
  gpFrom: string;
  gpTo: string;
  dayList: string;
}

const KIND_HINT: Record<string, string> = { wired: 'e.g. BT broadband', cellular: 'e.g. EE 4G backup', wifi: 'e.g. Surgery Wi-Fi backup' };
const KIND_WORD: Record<string, string> = { wired: 'wired internet line', cellular: '4G / mobile backup', wifi: 'Wi-Fi backup' };

/**
 * The wizard as one page of four numbered steps (one form: nothing is written until every step
 * is valid, so a half-finished set-up never exists). Passwords are never echoed back.
 */
export function wizardForm(
  config: Config,
  token: string,
  opts: { tpm: boolean; keyExists: boolean; values?: WizardValues; errors?: Array<{ field: string; message: string }> },
): string {
  const v = opts.values;
  const errs = opts.errors ?? [];
  const err = (field: string) =>
    errs
      .filter((x) => x.field === field)
      .map((x) => `<p class="err" id="err-${e(field)}">${e(x.message)}</p>`)
      .join('');
  const val = (s: string | undefined) => (s ? ` value="${e(s)}"` : '');
  const summary = errs.length
    ? `<div class="card" role="alert"><p class="error">Please fix ${errs.length === 1 ? 'this' : 'these'} and press "Finish set-up" again:</p>` +
      `<ul>${errs.map((x) => `<li>${e(x.message)}</li>`).join('')}</ul></div>`
    : '';
  const uplinks = config.uplinks.length
    ? config.uplinks
        .map(
          (u) => `<label for="label_${e(u.name)}">${e(KIND_WORD[u.kind] ?? u.kind)} (${e(u.interface)})</label>
<input id="label_${e(u.name)}" name="label_${e(u.name)}" maxlength="40" placeholder="${e(KIND_HINT[u.kind] ?? '')}"${val(v?.labels[u.name] ?? u.label)}>`,
        )
        .join('') + err('labels')
    : '<p class="muted">No internet connections are configured on this box yet: the ICB engineer adds them. You can skip this step.</p>';
  const tpmOffer = opts.tpm
    ? `<label class="inline"><input type="checkbox" name="tpm" value="yes"${!v || v.tpm ? ' checked' : ''}> ` +
      'Also let this box unlock the records by itself after a restart, using its TPM security chip (recommended). ' +
      "If the box's software is changed or the disk is moved to another box, the chip refuses and the passphrase is needed.</label>"
    : '';
  const key = opts.keyExists
    ? '<p>A records key already exists on this box; it is kept. Use its passphrase to unlock the records cache.</p>'
    : `<div class="rules"><p><strong>Read this first: the records passphrase</strong></p><ul>
<li>The copy of today's records on this box is encrypted. The passphrase is the only way to open it.</li>
<li>After every power cut or restart the records are locked until an admin types the passphrase on the Unlock ` +
      `page${opts.tpm ? ', unless the box unlocks itself with its TPM chip (below)' : ''}.</li>
<li>Write it down and keep it in the practice safe. Give it only to people who are admins.</li>
<li>If it is lost, nobody can open the copy, not even the ICB. The ICB engineer then deletes the key, you choose a new one, and the copy refills from ` +
      `the clinical system within 15 minutes while the internet works. Nothing in the clinical system itself is lost.</li>
</ul></div>
<label for="passphrase">Records passphrase (at least 10 characters)</label>` +
      `<input id="passphrase" name="passphrase" type="password" minlength="10" maxlength="1024" autocomplete="new-password" required>${err('passphrase')}
<label for="passphrase2">Type it again</label>` +
      `<input id="passphrase2" name="passphrase2" type="password" minlength="10" maxlength="1024" autocomplete="new-password" required>${err('passphrase2')}
${tpmOffer}
<label class="inline"><input type="checkbox" name="understood" value="yes" required${v?.understood ? ' checked' : ''}> I have written the passphrase ` +
      `down and it will be kept safe.</label>${err('understood')}`;
  const g = config.records.gpconnect;
  return (
    `<h1>Set up this box</h1>
<p>Four steps; nothing is saved until you press <strong>Finish set-up</strong> at the end. It takes about five minutes.</p>
${summary}${err('general')}
<form method="post" action="/setup" novalidate>
<input type="hidden" name="_setup" value="${e(token)}">
<fieldset><legend>1. Your admin account</legend>
<p class="muted">The practice manager's own account. Admins add other staff, unlock the records and run drills.</p>
<label for="username">Username (lower case, e.g. jsmith)</label>` +
    `<input id="username" name="username" required maxlength="32" autocomplete="username"${val(v?.username)}>${err('username')}
<label for="password">Password (at least 10 characters)</label>` +
    `<input id="password" name="password" type="password" required minlength="10" maxlength="1024" autocomplete="new-password">${err('password')}
<label for="password2">Type it again</label>` +
    `<input id="password2" name="password2" type="password" required minlength="10" maxlength="1024" autocomplete="new-password">${err('password2')}
</fieldset>
<fieldset><legend>2. Name your internet connections</legend>
<p class="muted">The names your staff use; the status page and the ICB show them. Leave blank to keep the standard name.</p>
${uplinks}</fieldset>
<fieldset><legend>3. Records key</legend>${key}</fieldset>
<fieldset><legend>4. GP Connect (where today's records come from)</legend>
<p class="muted">From your GP Connect onboarding letter. Leave all blank to do this later (records stay off until then).</p>
<label for="gp_base">GP Connect address (https://…)</label>` +
    `<input id="gp_base" name="gp_base" inputmode="url" maxlength="500"${val(v?.gpBase ?? g.baseUrl)}>${err('gp_base')}
<label for="gp_ssp">Spine Secure Proxy address (if your letter gives one)</label>` +
    `<input id="gp_ssp" name="gp_ssp" inputmode="url" maxlength="500"${val(v?.gpSsp ?? g.sspUrl)}>${err('gp_ssp')}
<label for="gp_from">Our ASID (From)</label>` +
    `<input id="gp_from" name="gp_from" maxlength="20" inputmode="numeric"${val(v?.gpFrom ?? g.fromAsid)}>${err('gp_from')}
<label for="gp_to">Clinical system ASID (To)</label><input id="gp_to" name="gp_to" maxlength="20" inputmode="numeric"${val(v?.gpTo ?? g.toAsid)}>${err('gp_to')}
<label for="day_list">Day list address (https://…)</label>` +
    `<input id="day_list" name="day_list" inputmode="url" maxlength="500"${val(v?.dayList ?? config.records.dayList.fhirBaseUrl)}>${err('day_list')}
</fieldset>
<p><button class="primary" type="submit">Finish set-up</button></p>
</form>`
  );
}
