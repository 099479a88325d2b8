import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSigningPage, signingPageCsp } from './build.ts';

// `npm run build:signing-page -- <folder> [--api-base https://api.example.com]`: the signing page's static
// assets, and the Content-Security-Policy header the host should send with them.
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'api-base': { type: 'string', default: '' } },
});
if (positionals.length !== 1) {
  console.error('usage: npm run build:signing-page -- <folder> [--api-base <https URL of the API>]');
  process.exit(2);
}
const folder = resolve(positionals[0]!);
mkdirSync(folder, { recursive: true });
for (const [name, asset] of await buildSigningPage(values['api-base']))
  writeFileSync(join(folder, name), asset.body);
console.log(`signing page written to ${folder}`);
console.log(`serve it with: Content-Security-Policy: ${signingPageCsp(values['api-base'])}`);
