import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { otpauthUri } from '../../../common/totp.js';
import { qrSvg } from '../../../fleet/src/web/qr.js';
import { onPath } from '../../lab/tools.js';

/**
 * The set-up page's QR code read back by a real decoder (zbar, Debian zbar-tools): the SVG's
 * rectangles are drawn into a greyscale bitmap (8 px a module) and zbarimg must return the exact
 * otpauth:// URI, so a drawing or encoding slip fails here rather than on an ICB admin's phone.
 */
function svgToPgm(svg: string, scale = 8): Buffer {
  const size = Number(/viewBox="0 0 (\d+) \d+"/.exec(svg)![1]);
  const px = size * scale;
  const img = Buffer.alloc(px * px, 255);
  const d = /<path fill="#000" d="([^"]+)"/.exec(svg)![1]!;
  for (const m of d.matchAll(/M(\d+) (\d+)h(\d+)v1h-\3z/g)) {
    const [x, y, w] = [Number(m[1]), Number(m[2]), Number(m[3])];
    for (let yy = y * scale; yy < (y + 1) * scale; yy++) img.fill(0, yy * px + x * scale, yy * px + (x + w) * scale);
  }
  assert.equal(d.replace(/M(\d+) (\d+)h(\d+)v1h-\3z/g, ''), '', 'the path is only rectangles this reader understands');
  return Buffer.concat([Buffer.from(`P5 ${px} ${px} 255\n`), img]);
}

describe('QR code on the TOTP set-up page', () => {
  it('is inline SVG with no script, labelled for screen readers, with a quiet zone', () => {
    const svg = qrSvg('otpauth://totp/x:y?secret=MZXW6YTBOI', { label: 'a "label" <b>' });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 (\d+) \1" width="200" height="200" role="img"/);
    assert.match(svg, /aria-label="a &quot;label&quot; &lt;b&gt;"/);
    assert.doesNotMatch(svg, /<script|\son[a-z]+=|href=|style=/);
    assert.ok(!/M[0-3] |M\d+ [0-3]h/.test(svg), 'nothing drawn in the 4-module quiet zone');
  });

  it('decodes (zbarimg) to the exact otpauth URI', { skip: !onPath('zbarimg') && 'zbarimg is not installed (apt-get install zbar-tools)' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-qr-'));
    try {
      for (const uri of [
        otpauthUri({ issuer: 'NHS Test ICB', account: 'amy', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' }),
        otpauthUri({ issuer: 'surgery-edge fleet', account: 'a.very-long.user_name01', secret: 'MZXW6YTBOIMZXW6YTBOIMZXW6YTBOIAB' }),
      ]) {
        const f = join(dir, 'qr.pgm');
        writeFileSync(f, svgToPgm(qrSvg(uri, { label: 'qr' })));
        const out = execFileSync('zbarimg', ['--raw', '-q', f], { encoding: 'utf8' }).trim();
        assert.equal(out, uri);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
