import { AsyncLocalStorage } from 'node:async_hooks';
import type { LocalPrincipal } from './stack-policies.ts';

/**
 * Which function of the stack is calling, locally: every handler runs in one process and shares the
 * dependencies, so the IAM stand-in learns the caller the way a Lambda's SDK knows its credentials, from
 * the context the call runs in. A port wrapped by {@link actingAs} runs each of its methods as its function;
 * what runs outside any (the local stack's own setup, a test's direct use of a store) is not a Lambda call
 * and is not authorised.
 */
const callers = new AsyncLocalStorage<LocalPrincipal>();

/** The principal the current call runs as, if it runs inside a function's call. */
export function currentCaller(): LocalPrincipal | undefined {
  return callers.getStore();
}

/** `port` with each of its methods run as `principal` (looked up on the port when called). */
export function actingAs<T extends object>(principal: LocalPrincipal, port: T): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => callers.run(principal, () => value.apply(target, args));
    },
  });
}

/**
 * Runs `work` outside any function's call, as what AWS starts on its own: an EventBridge rule's target is
 * invoked by EventBridge, not by the function whose PutEvents raised the event, so the work it starts (a
 * state machine execution) must not inherit that function's role from the publisher's call context.
 */
export function outsideAnyFunction<T>(work: () => T): T {
  return callers.exit(work);
}
