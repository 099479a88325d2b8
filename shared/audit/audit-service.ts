import { NotFoundError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import type { Reply } from '../http/reply.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { listPlatformKeys } from '../signing/platform-key-registry.ts';
import { type AuditRecord, type ChainVerification, verifyChain } from './audit-chain.ts';
import { type CheckpointProof, loadCheckpointProof, verifyCheckpointProof } from './audit-checkpoints.ts';
import { listAuditRecords, loadAuditHead } from './audit-store.ts';

export interface AuditTrail {
  readonly entityId: string;
  readonly records: AuditRecord[];
  readonly verification: ChainVerification & {
    /**
     * Whether the latest signed checkpoint covering this entity verifies and its head is the record the
     * trail holds at that seq; null when no checkpoint covers the entity yet or the page does not hold it.
     */
    readonly anchored: boolean | null;
    readonly anchorReason: string | null;
  };
  /** The latest signed checkpoint covering this entity, with the inclusion proof of its head. */
  readonly checkpoint: CheckpointProof | null;
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
  const [records, prevHash, checkpoint] = await Promise.all([
    listAuditRecords(deps.db, query.entityId, query.afterSeq, query.limit),
    query.afterSeq === 0 ? undefined : loadAuditHead(deps.db, query.entityId, query.afterSeq),
    loadCheckpointProof(deps.db, query.entityId),
  ]);
  const chain = verifyChain(
    records,
    prevHash === undefined ? undefined : { seq: query.afterSeq + 1, prevHash },
  );
  const anchor = checkpoint
    ? await checkAnchor(deps, checkpoint, records)
    : { anchored: null, anchorReason: null };
  return {
    status: 200,
    body: { entityId: query.entityId, records, verification: { ...chain, ...anchor }, checkpoint },
  };
}

async function checkAnchor(
  deps: Dependencies,
  checkpoint: CheckpointProof,
  records: readonly AuditRecord[],
): Promise<{ anchored: boolean | null; anchorReason: string | null }> {
  const failure = verifyCheckpointProof(checkpoint, await listPlatformKeys(deps.db));
  if (failure) return { anchored: false, anchorReason: failure };
  const record = records.find((r) => r.seq === checkpoint.leaf.seq);
  if (!record) return { anchored: null, anchorReason: `seq ${checkpoint.leaf.seq} is not on this page` };
  return record.hash === checkpoint.leaf.hash
    ? { anchored: true, anchorReason: null }
    : { anchored: false, anchorReason: `record ${record.seq} differs from the signed checkpoint` };
}

function mayRead(caller: Identity, first: AuditRecord): boolean {
  if (caller.roles.includes('auditor') || caller.roles.includes('admin')) return true;
  if (first.entityId === caller.id) return true;
  const data = first.data as { providerId?: unknown; consumerId?: unknown } | null;
  // Contracts, their measurement sets, enclaves and keys carry both parties in their first record.
  return (
    (first.entityType === 'contract' ||
      first.entityType === 'measurement-set' ||
      first.entityType === 'enclave' ||
      first.entityType === 'contract-key') &&
    (data?.providerId === caller.id || data?.consumerId === caller.id)
  );
}
