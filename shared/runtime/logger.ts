import { Logger } from '@aws-lambda-powertools/logger';

/** One structured logger per process (Powertools); service name from POWERTOOLS_SERVICE_NAME. */
export const logger = new Logger({ serviceName: 'enclave-contracts' });
