// The two modules `qrcode`'s toString uses for SVG: its entry point also loads the PNG renderer (pngjs),
// which the enrolment bundle would carry for nothing. A module of its own, so that only the enrolment route
// bundles them (they are CommonJS: esbuild keeps what is imported, used or not).
import { create as createQrCode } from 'qrcode/lib/core/qrcode.js';
import { render as renderSvgTag } from 'qrcode/lib/renderer/svg-tag.js';

/** `text` as a QR code, an SVG document (what `qrcode`'s toString answers with `type: 'svg'`). */
export function qrSvg(text: string): string {
  let svg = '';
  renderSvgTag(createQrCode(text, { errorCorrectionLevel: 'M' }), { margin: 2 }, (error, rendered) => {
    if (error) throw error;
    svg = rendered;
  });
  return svg;
}
