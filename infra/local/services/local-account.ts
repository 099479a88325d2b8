/**
 * The account and region every local stand-in stands for: the ARNs they name, the SigV4 credential scopes
 * they verify, the region the functions are told they run in. One place, free of CDK imports, so that a
 * lightweight module (the gateway, a test client) can name them without loading the stack.
 */
export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'eu-central-1';
