import { createHash } from 'node:crypto';
import type { ResolvedPeers, TelephonyConfig } from './types.js';

/**
 * The routing blocks of kamailio.cfg that depend on who sent a request: a LAN handset, the cloud
 * PBX or a trunk. request_route (kamailio-cfg.ts) classifies the source once (route[SOURCE]) and
 * handles everything that is the same for all of them (in-dialog requests, CANCEL, retransmissions)
 * once; these blocks only see initial requests.
 */

/** Digest HA1 = MD5(user:realm:password) (RFC 2617): kamailio checks responses against it. */
export function ha1(user: string, realm: string, password: string): string {
  return createHash('md5').update(`${user}:${realm}:${password}`).digest('hex');
}

export const alt = (xs: readonly string[]) => xs.map((x) => x.replace(/[^0-9A-Za-z*#+.]/g, '').replace(/[*+.]/g, (c) => '\\' + c)).join('|');
export const sipUri = (ip: string, port: number) => `sip:${ip}:${port}`;
export const subnetTest = (subnets: readonly string[], pv: string) => subnets.map((s) => `is_in_subnet("${pv}", "${s}")`).join(' || ') || 'false';

/** route[SOURCE]: $var(src) = pbx | trunk | lan; anything else is refused before any work. */
export function sourceRoute(c: TelephonyConfig, peers: ResolvedPeers): string {
  const fromPbx = peers.pbx ? `$si == "${peers.pbx.ip}"` : 'false';
  const fromTrunk =
    [peers.trunk?.ip, peers.emergency?.ip]
      .filter((x): x is string => !!x)
      .map((ip) => `$si == "${ip}"`)
      .join(' || ') || 'false';
  return `route[SOURCE] {
	if (${fromPbx}) {
		$var(src) = "pbx";
	} else if (${fromTrunk}) {
		$var(src) = "trunk";
	} else if (${subnetTest(c.lanSubnets, '$si')}) {
		$var(src) = "lan";
	} else {
		# Only LAN handsets and the configured peers: everything else is refused before any work.
		if (!is_method("ACK")) sl_send_reply("403", "Forbidden: LAN handsets only");
		exit;
	}
}`;
}

/**
 * Digest checks with a per-source failure count (htable authfail, autoexpire = auth.banS): after
 * auth.maxFailures wrong answers a source gets 403 without its credentials being looked at, so a
 * password cannot be guessed at SIP speed. A stale nonce (kamailio restarted) is re-challenged,
 * not counted. Emergency calls never reach these routes.
 */
export function authRoutes(c: TelephonyConfig): string {
  const ha1Cases = c.extensions.map((e) => `\t\tcase "${e.ext}": $var(ha1) = "${ha1(e.ext, c.realm, e.password)}"; break;`).join('\n');
  const check = (kind: 'www' | 'proxy', user: '$tU' | '$fU') => `	if ($sht(authfail=>$si) >= ${c.auth.maxFailures}) {
		$sht(authfail=>$si) = $sht(authfail=>$si) + 1;
		sl_send_reply("403", "Forbidden: too many failed attempts");
		exit;
	}
	if (!is_present_hf("${kind === 'www' ? 'Authorization' : 'Proxy-Authorization'}")) {
		auth_challenge("${c.realm}", "0");
		exit;
	}
	route(AUTH_HA1);
	$var(rc) = pv_${kind}_authenticate("${c.realm}", "$var(ha1)", "1");
	if ($var(rc) == -4 || $var(rc) == -6) {
		# nonce expired / reused (e.g. kamailio restarted): a fresh challenge, not a failure.
		auth_challenge("${c.realm}", "1");
		exit;
	}
	if ($var(rc) < 0 || $au != ${user}) {
		$sht(authfail=>$si) = $sht(authfail=>$si) + 1;
		xlog("L_WARN", "wrong SIP credentials from $si ($sht(authfail=>$si) failures)\\n");
		sl_send_reply("403", "Forbidden: wrong credentials");
		exit;
	}
	consume_credentials();`;
  return `route[AUTH_HA1] {
	$var(ha1) = "";
	switch ($au) {
${ha1Cases}
		default: $var(ha1) = "x";
	}
}

route[AUTH_REGISTER] {
${check('www', '$tU')}
}

route[AUTH_CALL] {
${check('proxy', '$fU')}
}`;
}

/** Initial requests from the cloud PBX: only towards LAN handsets, via the Path we added. */
export function fromPbxRoute(c: TelephonyConfig): string {
  return `route[FROM_PBX] {
	if (!loose_route()) remove_hf("Route");
	if (!(${subnetTest(c.lanSubnets, '$rd')})) {
		sl_send_reply("403", "Forbidden: not a LAN handset");
		exit;
	}
	if (is_method("INVITE")) record_route();
	route(RELAY);
}`;
}

/** Initial requests from the fallback/emergency trunk: inbound DDI -> hunt group, or an extension. */
export function fromTrunkRoute(c: TelephonyConfig, extRe: string): string {
  const ddiRe = c.huntGroup.ddis.length ? `^(${alt(c.huntGroup.ddis)})$` : '^$';
  return `route[FROM_TRUNK] {
	if (is_method("OPTIONS")) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (!is_method("INVITE")) {
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}
	remove_hf("Route");
	record_route();
	if ($rU =~ "${ddiRe}") {
		dlg_manage();
		${c.huntGroup.members.length ? 'route(HUNT_0);' : 'sl_send_reply("480", "No hunt group");'}
		exit;
	}
	if ($rU =~ "${extRe}") {
		if (!lookup("location")) {
			sl_send_reply("480", "Temporarily Unavailable");
			exit;
		}
		route(RELAY);
	}
	sl_send_reply("404", "Not Found");
	exit;
}`;
}

/**
 * Hunt group: route[HUNT_i] rings member i for ringMs (or skips a member with no binding at once);
 * its failure_route (no answer, busy, unreachable) moves on to member i+1. Reception is member 0.
 */
export function huntRoutes(c: TelephonyConfig): string {
  const members = c.huntGroup.members;
  return members
    .map((m, i) => {
      const last = i + 1 >= members.length;
      return `route[HUNT_${i}] {
	$ru = "sip:${m}@${c.listen}:${c.port}";
	if (!lookup("location")) {
		${last ? 'send_reply("480", "Nobody available");' : `route(HUNT_${i + 1});`}
		exit;
	}
	t_set_fr(${c.huntGroup.ringMs}, 2000);
	${last ? '' : `t_on_failure("HUNT_NEXT_${i + 1}");`}
	if (!t_relay()) send_reply("500", "Could not ring");
	exit;
}${
        last
          ? ''
          : `
failure_route[HUNT_NEXT_${i + 1}] {
	if (t_is_canceled()) exit;
	route(HUNT_${i + 1});
}`
      }`;
    })
    .join('\n');
}

/** Emergency: the PBX first in cloud mode (3 s to show life, any failure falls over), else the trunk. */
export function emergencyRoutes(peers: ResolvedPeers): string {
  const target = peers.emergency ?? peers.trunk;
  const trunk = target
    ? `	$du = "${sipUri(target.ip, target.port)}";
	$rd = "${target.ip}";
	$rp = ${target.port};
	if (is_method("INVITE") && !has_totag()) dlg_manage();
	if (!t_relay()) send_reply("503", "Emergency trunk unreachable");
	exit;`
    : peers.pbx
      ? `	$du = "${sipUri(peers.pbx.ip, peers.pbx.port)}";
	if (!t_relay()) send_reply("503", "No emergency route");
	exit;`
      : `	send_reply("503", "No emergency route configured");
	exit;`;
  return `route[EMERGENCY] {
	xlog("L_NOTICE", "emergency call from $si\\n");
	route(MODE);
	if ($var(cloud) == 1) {
		t_on_failure("EMERGENCY_FALLBACK");
		# No provisional from the PBX within 3 s: try the emergency trunk.
		t_set_fr(120000, 3000);
		route(RELAY);
	}
	route(EMERGENCY_TRUNK);
}

failure_route[EMERGENCY_FALLBACK] {
	if (t_is_canceled()) exit;
	route(EMERGENCY_TRUNK);
}

route[EMERGENCY_TRUNK] {
${trunk}
}`;
}
