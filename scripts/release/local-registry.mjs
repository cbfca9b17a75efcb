import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

/**
 * A registry on loopback that serves the packed `@egress/*` tarballs, so that `npx @egress/cli`
 * can be tried as a user would before anything is published. Point only the scope at it
 * (`@egress:registry`); every other package still comes from the public registry.
 */
export async function startLocalRegistry(tarballs) {
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
