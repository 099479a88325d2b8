import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inclusionProof, leafHash, rootFromProof, treeRoot } from '../../shared/audit/merkle-tree.ts';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

describe('RFC 6962 Merkle tree', () => {
  it('proves every leaf of every tree size up to 40', () => {
    for (let n = 1; n <= 40; n++) {
      const l = leaves(n);
      const root = treeRoot(l);
      for (let i = 0; i < n; i++) {
        expect(rootFromProof(l[i]!, i, n, inclusionProof(l, i))?.equals(root)).toBe(true);
      }
    }
  });

  it('matches the RFC 6962 structure for three leaves', () => {
    const l = leaves(3);
    const node = (a: Buffer, b: Buffer) =>
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(a)
        .update(b)
        .digest();
    expect(treeRoot(l).equals(node(node(l[0]!, l[1]!), l[2]!))).toBe(true);
  });

  // The tree size is signed with the root; a proof alone cannot always tell sizes with the same path shape.
  it('refuses a wrong leaf, index or path', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        fc.nat(),
        fc.constantFrom('leaf', 'index', 'path'),
        (n, seed, how) => {
          const l = leaves(n);
          const i = seed % n;
          const root = treeRoot(l);
          const proof = inclusionProof(l, i);
          const other = (i + 1) % n;
          const result =
            how === 'leaf'
              ? rootFromProof(l[other]!, i, n, proof)
              : how === 'index'
                ? rootFromProof(l[i]!, other, n, proof)
                : rootFromProof(
                    l[i]!,
                    i,
                    n,
                    proof.map((p, j) => (j === 0 ? leafHash(p) : p)),
                  );
          expect(result?.equals(root) ?? false).toBe(false);
        },
      ),
    );
  });

  // The reference vectors of RFC 6962's implementation (certificate-transparency's merkle tree tests): eight
  // leaves of known data, the root of every prefix and audit paths. They fix the leaf and node hashes
  // themselves (SHA-256 with the 0x00 and 0x01 domain-separation prefixes), which a test that computes its
  // expected root with the module's own leafHash cannot.
  const VECTOR_LEAVES = [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ];
  const VECTOR_ROOTS = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  const vectorLeaves = VECTOR_LEAVES.map((hex) => leafHash(Buffer.from(hex, 'hex')));
  const hexes = (buffers: readonly Buffer[]) => buffers.map((b) => b.toString('hex'));

  it('gives the RFC 6962 reference roots for trees of 0 to 8 leaves', () => {
    // The empty tree's root is the hash of nothing; a leaf is hashed with its 0x00 prefix.
    expect(treeRoot([]).toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe(VECTOR_ROOTS[0]);
    for (let n = 1; n <= 8; n++) {
      expect(treeRoot(vectorLeaves.slice(0, n)).toString('hex')).toBe(VECTOR_ROOTS[n - 1]);
    }
  });

  it('gives the RFC 6962 reference audit paths, and they prove their leaves', () => {
    const cases = [
      {
        index: 0,
        size: 8,
        path: [
          '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
          '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
          '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
        ],
      },
      {
        index: 5,
        size: 8,
        path: [
          'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
          'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
          'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
        ],
      },
      { index: 2, size: 3, path: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
      { index: 0, size: 1, path: [] },
    ];
    for (const { index, size, path } of cases) {
      const tree = vectorLeaves.slice(0, size);
      expect(hexes(inclusionProof(tree, index))).toEqual(path);
      const proof = path.map((hex) => Buffer.from(hex, 'hex'));
      expect(rootFromProof(vectorLeaves[index]!, index, size, proof)?.toString('hex')).toBe(
        VECTOR_ROOTS[size - 1],
      );
    }
  });

  it('refuses indices outside the tree: no proof is made, and none verifies', () => {
    const tree = vectorLeaves.slice(0, 4);
    expect(() => inclusionProof(tree, -1)).toThrow(RangeError);
    expect(() => inclusionProof(tree, 4)).toThrow(RangeError);
    expect(() => inclusionProof([], 0)).toThrow(RangeError);
    // Leaf 3's path also has the shape of an index past the end, and leaf 0's of index -1: both refused.
    expect(rootFromProof(tree[3]!, 4, 4, inclusionProof(tree, 3))).toBeNull();
    expect(rootFromProof(tree[0]!, -1, 4, inclusionProof(tree, 0))).toBeNull();
    expect(rootFromProof(tree[0]!, 0, 0, [])).toBeNull();
    expect(rootFromProof(tree[0]!, 1, 1, [])).toBeNull();
    expect(rootFromProof(tree[0]!, 0, 1, [])?.equals(tree[0]!)).toBe(true);
  });

  it('refuses a path longer or shorter than the tree size demands', () => {
    const tree = vectorLeaves.slice(0, 8);
    const proof = inclusionProof(tree, 5);
    const extra = leafHash(Buffer.from('extra'));
    for (const wrong of [[extra, ...proof], [...proof, extra], proof.slice(1), proof.slice(0, -1), []]) {
      expect(rootFromProof(tree[5]!, 5, 8, wrong)).toBeNull();
    }
    expect(rootFromProof(tree[0]!, 0, 1, [extra])).toBeNull();
  });
});
