import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

/** An S3-compatible server on loopback (s3rver) storing objects under `directory`. */
export async function startS3Server(directory: string, buckets: readonly string[]) {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    /** Keys and sizes in a bucket, read over the S3 API itself. */
    async list(bucket: string): Promise<{ key: string; size: number }[]> {
      const response = await fetch(`${endpoint}/${bucket}?list-type=2`);
      const xml = await response.text();
      return [...xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)].map(([, contents]) => ({
        key: /<Key>(.*?)<\/Key>/.exec(contents!)?.[1] ?? '',
        size: Number(/<Size>(\d+)<\/Size>/.exec(contents!)?.[1] ?? 0),
      }));
    },
    close: () => server.close(),
  };
}
