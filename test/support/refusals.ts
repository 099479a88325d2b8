import { expect } from 'vitest';

/**
 * Refusal checking for the end-to-end suites: `send` must be answered with `status` and a problem+json of
 * `type`, and `snapshot` (the suite's view of everything a refusal must not change) must read the same
 * before and after. Returns the problem.
 * @example
 * const refused = refusalChecker(snapshot);
 * await refused(() => client.post(path, body), 422, 'invalid-otp');
 */
export function refusalChecker(snapshot: () => Promise<string>) {
  return async (
    send: () => Promise<{ status: number; body: unknown; headers: Headers }>,
    status: number,
    type: string,
  ): Promise<{ detail: string }> => {
    const before = await snapshot();
    const res = await send();
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((res.body as { type: string }).type).toMatch(new RegExp(`/${type}$`));
    expect(await snapshot()).toBe(before);
    return res.body as { detail: string };
  };
}
