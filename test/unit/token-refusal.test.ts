import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  LOCAL_AUDIENCE,
  LOCAL_ISSUER,
  LocalIssuer,
  refusalReason,
} from '../../infra/local/services/cognito/local-auth.ts';

/**
 * Why the local JWT authorizer refused a token, as the dev server logs it with a 401: one fixed sentence
 * per kind of failure, from real jose verifications, never anything of the token.
 */
const issuer = LocalIssuer.ephemeral();
const now = Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown>) => ({
  token_use: 'access',
  iss: LOCAL_ISSUER,
  aud: LOCAL_AUDIENCE,
  sub: 'local|provider',
  iat: now,
  exp: now + 600,
  ...extra,
});

async function reasonFor(token: string): Promise<string> {
  try {
    await issuer.verify(token);
  } catch (error) {
    const reason = refusalReason(error);
    expect(reason).not.toContain(token);
    for (const part of token.split('.')) if (part.length > 8) expect(reason).not.toContain(part);
    return reason;
  }
  throw new Error('the token was accepted');
}

describe('refusalReason', () => {
  it.each([
    ['an expired token', { exp: now - 1 }, /^token expired/],
    ['a token without exp', { exp: undefined }, /^token without "exp"$/],
    ['nbf in the future', { nbf: now + 3600 }, /^token not valid yet/],
    ['iat in the future', { iat: now + 3600 }, /^token issued in the future/],
    ['another issuer', { iss: 'urn:someone-else' }, /^token from another issuer/],
    ['another audience', { aud: 'another-api' }, /^token for another audience/],
  ])('%s', async (_name, extra, reason) => {
    expect(await reasonFor(await issuer.signClaims(claims(extra)))).toMatch(reason);
  });

  it('a token signed with another key', async () => {
    const foreign = await LocalIssuer.ephemeral().mint('local|provider');
    expect(await reasonFor(foreign)).toMatch(/^bad signature/);
  });

  it('a token signed with an algorithm the authorizer does not take', async () => {
    const hs256 = await new SignJWT(claims({}))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('a shared secret of thirty-two bytes!'));
    expect(await reasonFor(hs256)).toMatch(/^signature algorithm not allowed/);
  });

  it('something that is not a JWT', async () => {
    expect(await reasonFor('not-a-jwt-at-all')).toBe('malformed token');
  });

  it('an error that is not jose’s', () => {
    expect(refusalReason(new Error('Bearer eyJsecret'))).toBe('token could not be verified');
  });
});
