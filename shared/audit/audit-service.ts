import type { Reply } from '../contracts/contract-service.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { type AuditRecord, type ChainVerification, verifyChain } from './audit-chain.ts';
import { listAuditRecords, loadAuditHead } from './audit-store.ts';

export interface AuditTrail {
  readonly entityId: string;
  readonly records: AuditRecord[];
  readonly verification: ChainVerification;
}

/**
 * An entity's audit trail, recomputed and verified. Auditors and admins see every trail; otherwise only
 * the parties of the contract (taken from the chain's first record, so it works after deletion too) or
 * the identity itself. Anyone else gets 404, as for the entity.
 */
export async function getAuditTrail(
  deps: Dependencies,
  caller: Identity,
  query: { entityId: string; afterSeq: number; limit: number },
): Promise<Reply<AuditTrail>> {
  const [first] = await listAuditRecords(deps.db, query.entityId, 0, 1);
  if (!first || !mayRead(caller, first)) throw new NotFoundError(`Audit trail of ${query.entityId}`);
  const records =
    query.afterSeq === 0
      ? await listAuditRecords(deps.db, query.entityId, 0, query.limit)
      : await listAuditRecords(deps.db, query.entityId, query.afterSeq, query.limit);
  const prevHash =
    query.afterSeq === 0 ? undefined : await loadAuditHead(deps.db, query.entityId, query.afterSeq);
  const verification = verifyChain(
    records,
    prevHash === undefined ? undefined : { seq: query.afterSeq + 1, prevHash },
  );
  return { status: 200, body: { entityId: query.entityId, records, verification } };
}

function mayRead(caller: Identity, first: AuditRecord): boolean {
  if (caller.roles.includes('auditor') || caller.roles.includes('admin')) return true;
  if (first.entityId === caller.id) return true;
  const data = first.data as { providerId?: unknown; consumerId?: unknown } | null;
  return (
    first.entityType === 'contract' && (data?.providerId === caller.id || data?.consumerId === caller.id)
  );
}
