import { existsSync, readFileSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, localOrigin, startLocalStack } from '../../infra/local/local-stack.ts';
import { seededSubject } from '../../infra/local/seed.ts';
import { ApiClient, seeded } from '../support/api-client.ts';

/**
 * The signing page in a real browser: Debian's Chromium, headless, driven by playwright-core, each party
 * with a CDP virtual authenticator (CTAP2, internal, resident keys, user verification on) standing in for
 * a fingerprint reader. End to end on the local stack: each party connects, registers a passkey, reviews
 * the contract and signs it with the passkey; the second activates it. The server checks everything as it
 * would for any browser.
 *
 * Chromium is `CHROMIUM_BIN` or /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). In CI
 * its absence is a failure (run-tests.mjs checks); elsewhere the suite says so and is skipped.
 */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available)
  console.warn(`No Chromium at ${CHROMIUM}: the signing page suite is SKIPPED (apt-get install chromium).`);

const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));

let stack: LocalStack;
let browser: Browser;
let origin: string;

beforeAll(async () => {
  if (!available) return;
  stack = await startLocalStack({ scheduledJobs: false });
  origin = localOrigin(stack.url);
  // As the machine's notes advise: no background networking (the sandbox has no network) and no GPU.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** A browser profile for one party, with its own virtual authenticator (user verification on). */
async function partyPage(): Promise<{ context: BrowserContext; page: Page; authenticatorId: string }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, authenticatorId };
}

async function expectMessage(page: Page, text: RegExp) {
  await expect.poll(() => page.getByTestId('message').textContent(), { timeout: 15_000 }).toMatch(text);
}

/** Connects as `who`, registers a passkey, opens the contract and signs it on the page. */
async function registerAndSign(page: Page, who: 'provider' | 'consumer', contractId: string) {
  const token = await stack.issuer.mint(seededSubject(who));
  const response = await page.goto(`${origin}/signing/?contract=${contractId}#token=${token}`);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
  await expect.poll(() => page.getByTestId('who').textContent()).toContain(seeded[who]);
  await page.click('#register');
  await expectMessage(page, /Passkey registered/);
  await expect.poll(() => page.getByTestId('passkeys').locator('li').count()).toBe(1);
  await expect.poll(() => page.getByTestId('title').textContent()).toBe(CREATE.title);
  expect(JSON.parse((await page.getByTestId('terms').textContent())!)).toEqual(CREATE.terms);
  await page.click('#sign');
  await expectMessage(page, /Signed version/);
}

describe.skipIf(!available)('the signing page in headless Chromium', () => {
  it('registers passkeys, signs biometrically and activates, end to end', async () => {
    const provider = await ApiClient.as(stack, 'provider');
    const created = await provider.post<{ id: string }>('/contracts', CREATE);
    expect(created.status, created.text).toBe(201);
    const id = created.body.id;

    const providerPage = await partyPage();
    await registerAndSign(providerPage.page, 'provider', id);
    await expect
      .poll(() => providerPage.page.getByTestId('contract-status').textContent())
      .toBe('PendingSignature');

    const consumerPage = await partyPage();
    await registerAndSign(consumerPage.page, 'consumer', id);
    await consumerPage.page.click('#activate');
    await expectMessage(consumerPage.page, /Contract Active/);
    await expect.poll(() => consumerPage.page.getByTestId('signatures').locator('li').count()).toBe(3);

    // What the server stored: two biometric signatures by the passkeys the browser created, countersigned.
    const contract = await provider.get<{
      status: string;
      signatures: { role: string; type: string; kid: string; assertion?: { signCount: number } }[];
    }>(`/contracts/${id}`);
    expect(contract.body.status).toBe('Active');
    const parties = contract.body.signatures.filter((s) => s.role !== 'platform');
    expect(parties.map((s) => [s.role, s.type])).toEqual([
      ['provider', 'biometric'],
      ['consumer', 'biometric'],
    ]);
    const passkeys = await provider.get<{ credentials: { id: string; signCount: number }[] }>(
      `/identities/${seeded.provider}/webauthn/credentials`,
    );
    expect(passkeys.body.credentials.map((c) => c.id)).toEqual([parties[0]!.kid]);
    const verification = await provider.get<{ valid: boolean }>(`/contracts/${id}/signatures/verification`);
    expect(verification.body.valid).toBe(true);
    await providerPage.context.close();
    await consumerPage.context.close();
  });

  it('signs only the content reviewed: a change after the review is refused, and the page says so', async () => {
    const provider = await ApiClient.as(stack, 'provider');
    const created = await provider.post<{ id: string; version: number }>('/contracts', CREATE);
    expect(created.status, created.text).toBe(201);
    const { page, context } = await partyPage();
    const token = await stack.issuer.mint(seededSubject('provider'));
    await page.goto(`${origin}/signing/?contract=${created.body.id}#token=${token}`);
    await expect.poll(() => page.getByTestId('title').textContent()).toBe(CREATE.title);
    await page.click('#register');
    await expectMessage(page, /Passkey registered/);
    // The terms change while the page shows the old ones.
    const changed = await provider.request('PUT', `/contracts/${created.body.id}`, {
      body: { title: 'Changed after the review' },
      headers: { 'if-match': `"${created.body.version}"` },
    });
    expect(changed.status, changed.text).toBe(200);
    await page.click('#sign');
    await expect
      .poll(() => page.getByTestId('message').getAttribute('class'), { timeout: 15_000 })
      .toBe('error');
    expect(await page.getByTestId('message').textContent()).toMatch(/Precondition failed/i);
    const stored = await provider.get<{ signatures: unknown[] }>(`/contracts/${created.body.id}`);
    expect(stored.body.signatures).toEqual([]);
    await context.close();
  });
});
