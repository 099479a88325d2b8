import { Logger } from '@aws-lambda-powertools/logger';
import type { LogItemExtraInput, LogItemMessage } from '@aws-lambda-powertools/logger/types';

let instance: Logger | undefined;
const powertools = (): Logger => {
  instance ??= new Logger({ serviceName: 'enclave-contracts' });
  return instance;
};

/**
 * One structured logger per process (Powertools; service name from POWERTOOLS_SERVICE_NAME), built when it
 * first logs. Building it sets up its own console on stdout and stderr, which a cold start would otherwise
 * pay in every function, while most API requests log nothing (a 500 logs; a 4xx does not).
 */
export const logger: Pick<Logger, 'info' | 'warn' | 'error' | 'createChild'> = {
  info: (input: LogItemMessage, ...extra: LogItemExtraInput) => powertools().info(input, ...extra),
  warn: (input: LogItemMessage, ...extra: LogItemExtraInput) => powertools().warn(input, ...extra),
  error: (input: LogItemMessage, ...extra: LogItemExtraInput) => powertools().error(input, ...extra),
  createChild: (options) => powertools().createChild(options),
};
