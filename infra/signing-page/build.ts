import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { projectPath } from '../project-paths.ts';

/**
 * The signing page (web/signing) as the static assets a browser loads: the HTML, the stylesheet and the
 * page's script bundled with `@simplewebauthn/browser` for browsers. The local stack serves them at
 * `/signing/`; `npm run build:signing-page -- <folder> [--api-base <url>]` writes them for a static host (an
 * S3 bucket behind CloudFront, say) whose origin is then one of the relying party's `webauthnOrigins`.
 */
export interface StaticAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

/** The page's Content-Security-Policy: its own script, style and API only; no frame may embed it. */
export function signingPageCsp(apiBase = ''): string {
  const connect = apiBase ? `'self' ${new URL(apiBase).origin}` : "'self'";
  return `default-src 'none'; script-src 'self'; style-src 'self'; connect-src ${connect}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

/** The assets by file name; `apiBase` is written into the page (empty: the API is on the page's origin). */
export async function buildSigningPage(apiBase = ''): Promise<ReadonlyMap<string, StaticAsset>> {
  const script = await build({
    entryPoints: [projectPath('web/signing/signing-page.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const html = readFileSync(projectPath('web/signing/index.html'), 'utf8').replace(
    '<meta name="api-base" content="">',
    `<meta name="api-base" content="${apiBase.replace(/[^A-Za-z0-9:/._-]/g, '')}">`,
  );
  return new Map([
    ['index.html', { contentType: 'text/html; charset=utf-8', body: Buffer.from(html) }],
    [
      'signing-page.css',
      {
        contentType: 'text/css; charset=utf-8',
        body: readFileSync(projectPath('web/signing/signing-page.css')),
      },
    ],
    [
      'signing-page.js',
      { contentType: 'text/javascript; charset=utf-8', body: Buffer.from(script.outputFiles[0]!.contents) },
    ],
  ]);
}
