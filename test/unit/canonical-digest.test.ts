import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../shared/domain/canonical-json.ts';
import { contentDigest, signingPayload } from '../../shared/domain/contract.ts';
import { contractFixture } from '../support/contracts.ts';

describe('RFC 8785 canonical JSON and content digests', () => {
  it('matches the RFC 8785 §3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (value) => {
        const reversed = Object.fromEntries(Object.entries(value).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(value));
      }),
    );
  });

  it('digests the signable content: any change to title, description, parties or terms changes it', () => {
    const c = contractFixture();
    expect(contentDigest(c)).toBe(
      sha256Hex(
        canonicalJson({
          contractId: c.id,
          title: c.title,
          description: c.description,
          providerId: c.providerId,
          consumerId: c.consumerId,
          terms: c.terms,
        }),
      ),
    );
    expect(contentDigest({ ...c, title: `${c.title}.` })).not.toBe(contentDigest(c));
    expect(contentDigest({ ...c, consumerId: c.providerId })).not.toBe(contentDigest(c));
    expect(
      contentDigest({ ...c, terms: { ...c.terms, retention: { ...c.terms.retention, rawDataDays: 1 } } }),
    ).not.toBe(contentDigest(c));
    // status, signatures and versions are not content
    expect(contentDigest({ ...c, status: 'Active', version: 9 } as typeof c)).toBe(contentDigest(c));
  });

  it('signs the digest together with the content version', () => {
    const c = contractFixture({ contentVersion: 4 });
    expect(signingPayload(c)).toBe(
      `{"contentDigest":"${c.contentDigest}","contractId":"${c.id}","version":4}`,
    );
  });
});
