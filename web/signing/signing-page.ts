import { startAuthentication, startRegistration } from '@simplewebauthn/browser';

/**
 * The signing page (browser code): a person connects with their access token, registers a passkey, reviews
 * a contract's terms as the API serves them, and signs the exact content version with the passkey (a
 * biometric signature), then activates it once both parties have. Everything it shows is set as text,
 * never as HTML, so no term, title or name can inject markup. The token stays in this page's memory.
 */

type Problem = { title?: string; detail?: string; type?: string };
type Contract = {
  id: string;
  title: string;
  description: string;
  status: string;
  providerId: string;
  consumerId: string;
  contentVersion: number;
  contentDigest: string;
  signingPayload: string;
  version: number;
  terms: unknown;
  availableActions?: string[];
  signatures: { role: string; type: string; signedAt: string; contentVersion: number }[];
};
type Passkey = { id: string; name: string; alg: string; createdAt: string; revokedAt: string | null };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const apiBase = `${document.querySelector<HTMLMetaElement>('meta[name="api-base"]')?.content || location.origin}/api/v1`;
let token = '';
let me: { id: string; name: string } | undefined;
let contract: Contract | undefined;

function say(text: string, error = false) {
  const message = $('message');
  message.textContent = text;
  message.className = error ? 'error' : '';
}

class ApiError extends Error {}

async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const res = await fetch(`${apiBase}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const payload = (await res.json().catch(() => ({}))) as T & Problem;
  if (!res.ok)
    throw new ApiError(`${payload.title ?? res.status}: ${payload.detail ?? 'the request failed'}`);
  return payload;
}

/** Runs an action, saying what went wrong instead of failing silently. */
function action(run: () => Promise<void>) {
  return () => {
    run().catch((error: unknown) => say(error instanceof Error ? error.message : String(error), true));
  };
}

async function showPasskeys() {
  const { credentials } = await api<{ credentials: Passkey[] }>(
    'GET',
    `/identities/${me!.id}/webauthn/credentials`,
  );
  $('passkeys').replaceChildren(
    ...credentials.map((c) => {
      const item = document.createElement('li');
      item.textContent = `${c.name} (${c.alg}, registered ${c.createdAt})${c.revokedAt ? `, revoked ${c.revokedAt}` : ''}`;
      return item;
    }),
  );
}

function show(c: Contract) {
  contract = c;
  $('review').hidden = false;
  $('title').textContent = c.title;
  $('description').textContent = c.description;
  $('contract-status').textContent = c.status;
  $('content-version').textContent = String(c.contentVersion);
  $('content-digest').textContent = c.contentDigest;
  $('provider').textContent = c.providerId;
  $('consumer').textContent = c.consumerId;
  $('terms').textContent = JSON.stringify(c.terms, null, 2);
  $('signatures').replaceChildren(
    ...c.signatures.map((s) => {
      const item = document.createElement('li');
      item.textContent = `${s.role}: ${s.type}, version ${s.contentVersion}, ${s.signedAt}`;
      return item;
    }),
  );
  const party = me && (c.providerId === me.id || c.consumerId === me.id);
  $<HTMLButtonElement>('sign').disabled = !party || !['Draft', 'PendingSignature'].includes(c.status);
  $<HTMLButtonElement>('activate').disabled = !party || c.status !== 'PendingSignature';
}

async function load() {
  const id = $<HTMLInputElement>('contract-id').value.trim();
  show(await api<Contract>('GET', `/contracts/${encodeURIComponent(id)}`));
  say('');
}

$('connect').addEventListener(
  'click',
  action(async () => {
    token = $<HTMLInputElement>('token').value.trim();
    me = await api<{ id: string; name: string }>('GET', '/identities/me');
    $('who').textContent = `Signed in as ${me.name} (${me.id})`;
    for (const id of ['register', 'load']) $<HTMLButtonElement>(id).disabled = false;
    await showPasskeys();
    if ($<HTMLInputElement>('contract-id').value) await load();
  }),
);

$('register').addEventListener(
  'click',
  action(async () => {
    const { publicKey } = await api<{ publicKey: Parameters<typeof startRegistration>[0]['optionsJSON'] }>(
      'POST',
      `/identities/${me!.id}/webauthn/registration-options`,
    );
    const response = await startRegistration({ optionsJSON: publicKey });
    const name = $<HTMLInputElement>('passkey-name').value.trim() || 'this device';
    await api('POST', `/identities/${me!.id}/webauthn/registrations`, { response, name });
    await showPasskeys();
    say('Passkey registered.');
  }),
);

$('load').addEventListener('click', action(load));

$('sign').addEventListener(
  'click',
  action(async () => {
    const c = contract!;
    // The challenge is derived from exactly the payload reviewed here: the signature cannot cover anything else.
    const options = await api<{
      nonce: string;
      publicKey: Parameters<typeof startAuthentication>[0]['optionsJSON'];
    }>('POST', `/identities/${me!.id}/webauthn/authentication-options`, { signingPayload: c.signingPayload });
    const assertion = await startAuthentication({ optionsJSON: options.publicKey });
    show(
      await api<Contract>(
        'POST',
        `/contracts/${c.id}/sign`,
        { type: 'biometric', nonce: options.nonce, assertion },
        { 'if-match': `"${c.version}"` },
      ),
    );
    say(`Signed version ${c.contentVersion}.`);
  }),
);

$('activate').addEventListener(
  'click',
  action(async () => {
    const c = contract!;
    show(
      await api<Contract>('POST', `/contracts/${c.id}/activate`, undefined, { 'if-match': `"${c.version}"` }),
    );
    say(`Contract ${contract!.status}.`);
  }),
);

// `?contract=<id>` opens a contract; `#token=<token>` connects (a fragment never reaches a server).
const params = new URLSearchParams(location.search);
$<HTMLInputElement>('contract-id').value = params.get('contract') ?? '';
const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromFragment) {
  $<HTMLInputElement>('token').value = fromFragment;
  history.replaceState(null, '', location.pathname + location.search);
  $('connect').click();
}
