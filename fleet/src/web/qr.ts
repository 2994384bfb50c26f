import qrcode from 'qrcode-generator';
import { e } from './html.js';

/**
 * A QR code as inline SVG, drawn on the server: no script and no image request, so the dashboard's
 * CSP (script-src 'self', img-src 'self' data:) is untouched. qrcode-generator (MIT, no
 * dependencies, types bundled) does the encoding; the drawing is one <path> of rectangles with
 * the 4-module quiet zone the standard asks for, black on white whatever the page's colours.
 * Error correction M: a phone camera reads it off a screen at 200 px.
 */
export function qrSvg(text: string, o: { label: string; px?: number }): string {
  const q = qrcode(0, 'M');
  q.addData(text, 'Byte');
  q.make();
  const n = q.getModuleCount();
  const quiet = 4;
  let d = '';
  // One rectangle per horizontal run of dark modules: a third of the size of one per module.
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) {
      if (!q.isDark(r, c)) continue;
      let w = 1;
      while (c + w < n && q.isDark(r, c + w)) w++;
      d += `M${c + quiet} ${r + quiet}h${w}v1h-${w}z`;
      c += w - 1;
    }
  const size = n + 2 * quiet;
  const px = o.px ?? 200;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" width="${px}" height="${px}" role="img" aria-label="${e(o.label)}" ` +
    `shape-rendering="crispEdges"><rect width="${size}" height="${size}" fill="#fff"/><path fill="#000" d="${d}"/></svg>`
  );
}
