/** Prefixes and suffixes S3 reserves for its own kinds of bucket (access points, directory buckets...). */
const reservedPrefixes = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const reservedSuffixes = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/**
 * What is wrong with a bucket name by S3's naming rules for general purpose buckets, or undefined:
 * 3 to 63 characters, lower-case letters, digits, dots and hyphens, starting and ending with a
 * letter or digit, no two dots in a row, not shaped like an IP address, and none of the reserved
 * prefixes and suffixes. A CR, LF, NUL or space can therefore never reach a request line or a log.
 */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return `expected a bucket name of 3 to 63 characters, got ${bucket.length}`;
  if (bucket.includes('/')) return 'a bucket name cannot contain "/" (put the path in "prefix")';
  if (!/^[a-z0-9.-]+$/.test(bucket)) return 'a bucket name holds only lower-case letters, digits, dots and hyphens';
  if (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket)) return 'a bucket name starts and ends with a letter or a digit';
  if (bucket.includes('..')) return 'a bucket name cannot contain two dots in a row';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'a bucket name cannot be shaped like an IP address';
  const prefix = reservedPrefixes.find((reserved) => bucket.startsWith(reserved));
  if (prefix) return `bucket names starting with "${prefix}" are reserved by S3`;
  const suffix = reservedSuffixes.find((reserved) => bucket.endsWith(reserved));
  if (suffix) return `bucket names ending with "${suffix}" are reserved by S3`;
  return undefined;
}
