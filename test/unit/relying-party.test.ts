import { describe, expect, it } from 'vitest';
import { checkRelyingParty } from '../../infra/contracts-stack.ts';
import { AuthenticationResponseSchema } from '../../shared/domain/webauthn.ts';
import * as z from '../../shared/domain/zod.ts';
import { relyingPartyOf } from '../../shared/runtime/runtime.ts';

describe('the WebAuthn relying party a deployment names', () => {
  it('takes a domain and https origins on it or its subdomains', () => {
    expect(() =>
      checkRelyingParty({
        rpId: 'example.com',
        origins: ['https://example.com', 'https://sign.example.com'],
      }),
    ).not.toThrow();
  });

  it.each([
    ['an IP address', { rpId: '10.0.0.1', origins: ['https://10.0.0.1'] }, /domain name/],
    ['a scheme in the id', { rpId: 'https://example.com', origins: ['https://example.com'] }, /domain name/],
    ['upper case', { rpId: 'Example.com', origins: ['https://example.com'] }, /domain name/],
    ['no origin', { rpId: 'example.com', origins: [] }, /at least one/],
    ['plain http', { rpId: 'example.com', origins: ['http://example.com'] }, /not an https origin/],
    ['another domain', { rpId: 'example.com', origins: ['https://badexample.com'] }, /not an https origin/],
    ['a path', { rpId: 'example.com', origins: ['https://example.com/sign'] }, /not an https origin/],
  ])('refuses %s before anything is deployed', (_what, rp, message) => {
    expect(() => checkRelyingParty(rp)).toThrow(message);
  });

  it('reaches the functions as WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS, or not at all', () => {
    const config = {
      WEBAUTHN_RP_ID: 'example.com',
      WEBAUTHN_ORIGINS: 'https://example.com, https://a.example.com',
    };
    expect(relyingPartyOf(config as never)).toEqual({
      id: 'example.com',
      name: 'Enclave Contracts',
      origins: ['https://example.com', 'https://a.example.com'],
    });
    expect(relyingPartyOf({} as never)).toBeUndefined();
  });
});

describe('the assertion a client sends', () => {
  const base = {
    id: 'AAAAAAAAAAAAAAAAAAAAAA',
    rawId: 'AAAAAAAAAAAAAAAAAAAAAA',
    type: 'public-key',
    response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' },
  };

  it('carries at most 16 client extension results, and no member the platform does not know', () => {
    const results = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`ext${i}`, true]));
    expect(
      z.safeParse(AuthenticationResponseSchema, { ...base, clientExtensionResults: results(16) }).success,
    ).toBe(true);
    expect(
      z.safeParse(AuthenticationResponseSchema, { ...base, clientExtensionResults: results(17) }).success,
    ).toBe(false);
    expect(z.safeParse(AuthenticationResponseSchema, { ...base, extra: 1 }).success).toBe(false);
  });
});
