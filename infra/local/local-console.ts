import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * What a workload inside a local enclave reaches, as `npm run enclave` plays it: the enclave's NSM (loopback
 * TCP in place of /dev/nsm), the parent's IMDS (the parent's role credentials, which a parent hands its
 * enclave) and KMS (which the parent's vsock-proxy forwards to), in the region.
 */
export interface EnclaveConsole {
  readonly enclaveId: string;
  readonly instanceId: string;
  readonly nsmPort: number;
  readonly imdsUrl: string;
  readonly kmsUrl: string;
  readonly region: string;
}

/** The file a running `npm start` names its console in, inside its data folder. */
export const CONSOLE_FILE = 'console.json';

/**
 * A loopback HTTP endpoint of the running local stack (`GET /enclaves/{id}` → {@link EnclaveConsole}, 404
 * when the enclave runs on no parent here), its URL written to `<dataDir>/console.json` for the local
 * commands. Nothing of it exists in AWS: there, the workload is in the enclave.
 */
export async function startLocalConsole(options: {
  readonly enclave: (enclaveId: string) => EnclaveConsole | undefined;
  readonly dataDir?: string | undefined;
}): Promise<{ readonly url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const id = /^\/enclaves\/([0-9a-f-]{36})$/.exec(request.url ?? '')?.[1];
    const found = request.method === 'GET' && id ? options.enclave(id) : undefined;
    response.writeHead(found ? 200 : 404, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify(
        found ?? { message: `enclave ${id ?? '?'} runs on no local parent (not Running, or not here)` },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.dataDir) writeFileSync(join(options.dataDir, CONSOLE_FILE), `${JSON.stringify({ url })}\n`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
