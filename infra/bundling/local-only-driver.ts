/**
 * Stands in, inside the Lambda bundles, for the database drivers only the local stack uses: PGlite and
 * node-postgres (`esbuild --alias`, see `AppFunction`). The runtime chooses the Data API adapter in AWS and
 * imports the other adapters dynamically, but esbuild's ESM output hoists an external package's import to the
 * top of the bundle, so merely marking the drivers external would make every function fail at cold start
 * ("Cannot find package"). Aliased to this module instead, they cost nothing, and using one by mistake
 * fails with an explicit message.
 */
function unavailable(driver: string): Error {
  return new Error(
    `${driver} is not bundled into Lambda functions: in AWS the database is reached through the RDS Data API (DATABASE_DRIVER=data-api)`,
  );
}

/** In place of `@electric-sql/pglite`. */
export class PGlite {
  constructor() {
    throw unavailable('@electric-sql/pglite');
  }
}

class Pool {
  constructor() {
    throw unavailable('pg');
  }
}

class Client {
  constructor() {
    throw unavailable('pg');
  }
}

/** In place of `pg` (node-postgres), imported as `import pg from 'pg'`. */
export default { Pool, Client };
