/**
 * `node:http` inside the Lambda bundles (`esbuild --alias`, see `AppFunction`), loaded with `require`
 * rather than imported as an ES module.
 *
 * Why: Node.js 24 gives an imported built-in module an ES namespace built from every property of its
 * exports, and `node:http` exports lazy properties (its WebSocket and the other fetch-family classes) whose
 * first read loads undici, Node's whole fetch implementation. So `import ... from 'node:http'`, which the
 * AWS SDK's HTTP handler and instance-metadata client do, cost every cold start about 20-45 ms (measured
 * with `npm run bench:cold-start` and in isolation: `import('node:http')` 40-55 ms, `require('node:http')`
 * 4-6 ms), for classes no function uses. `require` reads only what is asked for. Lambda's own runtime
 * client loads `node:http` the same way.
 *
 * Exports what the bundled code takes from `node:http`; esbuild refuses a bundle that imports anything else,
 * so a dependency that starts to need more fails the synth instead of running without it.
 */
import { createRequire } from 'node:module';

// A `require` of our own: esbuild neither bundles nor aliases a call through it.
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const { Agent, request, STATUS_CODES } = http;
export default http;
