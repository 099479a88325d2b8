import { describe, expect, it } from 'vitest';
import { qrSvg } from '../../shared/domain/qr-svg.ts';
import { codeAt, matchingStep, otpauthUri, totpStep } from '../../shared/domain/totp.ts';

/** RFC 6238 Appendix B: the SHA-1 seed, ASCII "12345678901234567890". */
const RFC_SEED = Buffer.from('12345678901234567890', 'ascii');
const at = (seconds: number) => new Date(seconds * 1000);

describe('TOTP (RFC 6238)', () => {
  it.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('at T=%i the code is the last six digits of %s (Appendix B, SHA-1)', (seconds, eight) => {
    expect(codeAt(RFC_SEED, at(seconds))).toBe(eight.slice(-6));
    expect(matchingStep(RFC_SEED, eight.slice(-6), at(seconds))).toBe(Math.floor(seconds / 30));
  });

  it('accepts the steps just before and after, and names the step the code belongs to', () => {
    const now = at(1_700_000_000);
    const step = totpStep(now);
    for (const delta of [-1, 0, 1]) {
      const code = codeAt(RFC_SEED, at(1_700_000_000 + delta * 30));
      expect(matchingStep(RFC_SEED, code, now)).toBe(step + delta);
    }
  });

  it('refuses codes two steps away, a wrong code, and another seed', () => {
    const now = at(1_700_000_000);
    const near = new Set([-1, 0, 1].map((d) => codeAt(RFC_SEED, at(1_700_000_000 + d * 30))));
    for (const delta of [-3, -2, 2, 3]) {
      const code = codeAt(RFC_SEED, at(1_700_000_000 + delta * 30));
      // (A six-digit code can repeat across steps; such a coincidence is the current window's code.)
      if (!near.has(code)) expect(matchingStep(RFC_SEED, code, now)).toBeNull();
    }
    const right = codeAt(RFC_SEED, now);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    if (!near.has(wrong)) expect(matchingStep(RFC_SEED, wrong, now)).toBeNull();
    const other = Buffer.alloc(20, 1);
    if (codeAt(other, now) !== right) expect(matchingStep(other, right, now)).toBeNull();
  });

  it('enrols from an otpauth URI carrying the seed in base32 and the parameters authenticators read', () => {
    const uri = new URL(otpauthUri(RFC_SEED, 'alice@example.test'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Enclave Contracts:alice@example.test');
    expect(Object.fromEntries(uri.searchParams)).toEqual({
      issuer: 'Enclave Contracts',
      secret: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', // RFC 4648 base32 of the seed
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
  });

  it('draws the URI as an SVG QR code whose size grows with what it holds', () => {
    const small = qrSvg('otpauth://totp/x?secret=A');
    const large = qrSvg(otpauthUri(RFC_SEED, 'a-much-longer-account-name@example.test'));
    for (const svg of [small, large]) {
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1"/);
      expect(svg).toMatch(/<path [^>]*d="M[^"]+"/);
    }
    const side = (svg: string) => Number(/viewBox="0 0 (\d+)/.exec(svg)![1]);
    expect(side(large)).toBeGreaterThan(side(small));
  });
});
