import { describe, expect, it } from 'vitest';
import { ContractTermsSchema } from '../../shared/domain/contract-terms.ts';
import { EnclaveConfigurationSchema } from '../../shared/domain/enclave.ts';
import * as z from '../../shared/domain/zod.ts';
import { defineRoute } from '../../shared/http/api-handler.ts';
import * as routes from '../../shared/http/routes.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';

/** Whether a schema is built: an eager one always; a `z.lazy` once zod cached what it built on its definition. */
const isBuilt = (schema: z.ZodMiniType) =>
  schema._zod.def.type !== 'lazy' || '_cachedInner' in schema._zod.def;

describe('buildNow', () => {
  it('builds every lazy schema a schema reaches, through each kind of composition, once', () => {
    const built: string[] = [];
    const lazy = (name: string, make: () => z.ZodMiniType) =>
      z.lazy(() => {
        built.push(name);
        return make();
      });
    const leaf = (name: string) => lazy(name, () => z.string());
    const schema = lazy('root', () =>
      z.strictObject({
        field: leaf('field'),
        list: z.array(leaf('element')),
        maybe: z.optional(z.nullable(leaf('inner'))),
        either: z.union([leaf('left'), z.object({ deep: leaf('deep') })]),
        map: z.record(z.string(), leaf('value')),
        piped: z.pipe(
          leaf('in'),
          z.transform((s: string) => s.length),
        ),
        tagged: z.discriminatedUnion('kind', [z.object({ kind: z.literal('a'), a: leaf('option') })]),
      }),
    );
    expect(built).toEqual([]);
    z.buildNow(schema);
    expect(built.sort()).toEqual(
      ['deep', 'element', 'field', 'in', 'inner', 'left', 'option', 'root', 'value'].sort(),
    );
    z.buildNow(schema);
    z.parse(z.optional(schema), undefined);
    expect(built).toHaveLength(9);
  });

  it('follows a recursive schema without looping', () => {
    type Tree = { children: Tree[] };
    const Tree: z.ZodMiniType<Tree> = z.lazy(() => z.object({ children: z.array(Tree) }));
    z.buildNow(Tree);
    expect(z.parse(Tree, { children: [{ children: [] }] })).toEqual({ children: [{ children: [] }] });
  });
});

describe('a route builds its own request schemas at init, and no other route’s', () => {
  const deps = {} as Dependencies;

  it('GET /contracts/{id} builds neither contract terms nor enclave configurations', () => {
    defineRoute(routes.getContract, deps, async () => ({ status: 200, body: null }));
    expect(isBuilt(ContractTermsSchema)).toBe(false);
    expect(isBuilt(EnclaveConfigurationSchema)).toBe(false);
  });

  it('POST /contracts builds the contract terms, PUT /enclaves/{id} the enclave configuration', () => {
    defineRoute(routes.createContract, deps, async () => ({ status: 200, body: null }));
    expect(isBuilt(ContractTermsSchema)).toBe(true);
    expect(isBuilt(EnclaveConfigurationSchema)).toBe(false);
    defineRoute(routes.updateEnclave, deps, async () => ({ status: 200, body: null }));
    expect(isBuilt(EnclaveConfigurationSchema)).toBe(true);
  });
});

describe('lazy schemas still refuse what they refuse', () => {
  it('validates a contract term through its lazy schema as before', () => {
    const result = z.safeParse(ContractTermsSchema, { datasets: 'not a list' });
    expect(result.success).toBe(false);
  });
});
