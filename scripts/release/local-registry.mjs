import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createServer } from 'node:http';

/**
 * A registry on loopback that serves the packed `@egress/*` tarballs, so that `npx @egress/cli`
 * can be tried as a user would before anything is published. Point only the scope at it
 * (`@egress:registry`); every other package still comes from the public registry.
 *
 * `files` are served as they are at their path: the better-sqlite3 binary this repository already
 * built, laid out as its install script looks for a prebuilt one, so that every fresh install in
 * CI does not compile SQLite again.
 */
export async function startLocalRegistry(tarballs, files = new Map()) {
  const packages = new Map();
  for (const tarball of tarballs) {
    const manifest = JSON.parse(execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' }));
    const bytes = readFileSync(tarball);
    packages.set(manifest.name, { manifest, bytes, file: `${manifest.name.replace('/', '-')}-${manifest.version}.tgz` });
  }
  const requested = [];
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://registry').pathname).replace(/^\/+/, '');
    requested.push(path);
    const served = files.get(`/${path}`);
    if (served) {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': served.length }).end(served);
      return;
    }
    const tarball = [...packages.values()].find((entry) => path === `tarballs/${entry.file}`);
    if (tarball) {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tarball.bytes.length }).end(tarball.bytes);
      return;
    }
    const entry = packages.get(path);
    if (!entry) {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    const { manifest, bytes, file } = entry;
    const document = {
      name: manifest.name,
      'dist-tags': { latest: manifest.version },
      versions: {
        [manifest.version]: {
          ...manifest,
          _id: `${manifest.name}@${manifest.version}`,
          dist: {
            tarball: `${url}tarballs/${file}`,
            integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
            shasum: createHash('sha1').update(bytes).digest('hex'),
          },
        },
      },
    };
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(document));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  return { url, requested, close: () => new Promise((resolve) => server.close(resolve)) };
}

/**
 * The better-sqlite3 binary built in this repository, packed as prebuild-install downloads one, and
 * the environment that points its install script at `registryUrl`. A fresh install of the same
 * version on the same Node ABI takes it instead of compiling; any other falls back to compiling.
 */
export function prebuiltBetterSqlite(repositoryRoot) {
  const require = createRequire(join(repositoryRoot, 'packages', 'store-sqlite', 'package.json'));
  const manifestPath = require.resolve('better-sqlite3/package.json');
  const { version } = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const archive = execFileSync('tar', ['-czf', '-', '-C', dirname(manifestPath), 'build/Release/better_sqlite3.node'], { maxBuffer: 256 * 1024 * 1024 });
  const path = `/better-sqlite3/v${version}/better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  return {
    version,
    files: new Map([[path, archive]]),
    environment: (registryUrl) => ({ npm_config_better_sqlite3_binary_host: `${registryUrl}better-sqlite3` }),
  };
}
