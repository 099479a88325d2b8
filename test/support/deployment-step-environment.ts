/**
 * The environment a deployment step's function reads in Lambda, pointed at local stand-ins: the SDK clients
 * it builds at module scope take their endpoints from `AWS_ENDPOINT_URL_<SERVICE>` (the SDK's
 * service-specific endpoint variables), as they would take the real ones. Call it before importing the
 * handler.
 */
export function useDeploymentStepEnvironment(endpoints: { rdsData: string; secretsManager?: string }): void {
  process.env.AWS_ENDPOINT_URL_RDS_DATA = endpoints.rdsData;
  if (endpoints.secretsManager) process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoints.secretsManager;
  process.env.AWS_REGION = 'eu-central-1';
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
}
