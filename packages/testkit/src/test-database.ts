const variables = { postgres: 'EGRESS_TEST_POSTGRES_URL', mysql: 'EGRESS_TEST_MYSQL_URL' } as const;

/**
 * The URL of a test database from the environment. On a developer machine without one, the tests
 * that need it skip and say why; under CI (`CI` set) a missing URL is an error, so a server that
 * should be there cannot silently turn a suite green.
 */
export function testDatabaseUrl(kind: keyof typeof variables): string | undefined {
  const variable = variables[kind];
  const url = process.env[variable];
  if (url) return url;
  if (process.env.CI) throw new Error(`${variable} is not set: CI runs the ${kind} tests against a real server`);
  console.warn(`[egress] skipping ${kind} tests: set ${variable} (e.g. ${kind === 'postgres' ? 'postgres://postgres@127.0.0.1:5432/test' : 'mysql://root@127.0.0.1:3306/test'}) to run them`);
  return undefined;
}
