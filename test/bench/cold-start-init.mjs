/**
 * One cold start of `npm run bench:cold-start`: imports the bundle named by argv[2] (its top-level code
 * and awaits included, as Lambda's init phase does) and writes, as the last line of stdout, how long that
 * took in ms: `initMs` on the clock, `cpuMs` of CPU time (all threads of the process: V8 compiles and
 * collects garbage off the main thread too), which a loaded machine disturbs far less than the clock.
 * Run in a fresh Node process per measurement, with the function's environment.
 */
import { pathToFileURL } from 'node:url';

const cpu = process.cpuUsage();
const started = performance.now();
const module = await import(pathToFileURL(process.argv[2]).href);
const initMs = performance.now() - started;
const { user, system } = process.cpuUsage(cpu);
if (typeof module.handler !== 'function') throw new Error(`${process.argv[2]} exports no handler`);
process.stdout.write(`\n${JSON.stringify({ initMs, cpuMs: (user + system) / 1000 })}\n`);
