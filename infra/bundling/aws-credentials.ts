/**
 * The AWS SDK's default credential provider inside the Lambda bundles (`esbuild --alias` in place of
 * `@aws-sdk/credential-provider-node`, see `AppFunction`): the sources that exist in Lambda, and only those.
 *
 * Why: every SDK client's runtime configuration imports the Node.js default chain, which can also read
 * profiles and SSO caches (`~/.aws`), run a credential process, exchange a web identity token, log in, and
 * ask EC2's instance metadata service. esbuild bundles each of them with the STS and SSO clients they call
 * (`@aws-sdk/nested-clients`): 115 KB, a third of a function's bundle, parsed at every cold start (the
 * floor's init fell from 68 to 50 ms, measured interleaved). None of them can apply in Lambda: the runtime
 * gives the function its execution role's credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
 * `AWS_SESSION_TOKEN` (Lambda's reserved environment variables), which the default chain reads first too;
 * where Lambda serves them from a container credentials endpoint instead (`AWS_CONTAINER_CREDENTIALS_FULL_URI`,
 * as for SnapStart), the second link reads them there.
 *
 * Same contract as the chain it replaces: the environment first, then the container endpoint; the
 * credentials are kept until five minutes before they expire (static ones for good), concurrent requests
 * share one read, and a failed read is not kept. The SDK takes only `defaultProvider`: esbuild refuses a bundle that imports anything else, so an SDK update that starts to
 * need more fails the synth instead of running without it.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { fromHttp } from '@aws-sdk/credential-provider-http';
import { CredentialsProviderError } from '@smithy/core/config';

/** What the SDK passes its default provider: its client configuration, with a logger among the rest. */
type ProviderInit = Parameters<typeof fromEnv>[0] & Parameters<typeof fromHttp>[0];
type CredentialsProvider = ReturnType<typeof fromEnv>;
type Credentials = Awaited<ReturnType<CredentialsProvider>>;

/** Read again this long before they expire, as the SDK's own chain does. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;

export const defaultProvider = (init: ProviderInit = {}): CredentialsProvider => {
  let held: Promise<Credentials> | undefined;
  let expiration: Date | undefined;
  return async (options?: { forceRefresh?: boolean }) => {
    const stale = expiration !== undefined && expiration.getTime() - Date.now() < REFRESH_BEFORE_EXPIRY_MS;
    if (!held || stale || options?.forceRefresh) {
      const reading = read(init).then((credentials) => {
        expiration = credentials.expiration;
        return credentials;
      });
      held = reading;
      // A failed read is not kept: the next request reads again.
      reading.catch(() => {
        if (held === reading) held = undefined;
      });
    }
    return held;
  };
};

/** The first source Lambda configured: its errors are the caller's (an endpoint's refusal is not hidden). */
function read(init: ProviderInit): Promise<Credentials> {
  const env = process.env;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return fromEnv(init)();
  if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) {
    return fromHttp(init)();
  }
  return Promise.reject(
    new CredentialsProviderError(
      'No AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI/AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set (Lambda sets them for its execution role)',
      { tryNextLink: false },
    ),
  );
}
