import { packageBuild } from '../../tsup.base';

// bin.ts is built in both formats like the index; the `egress-demo` bin points at the ESM one.
export default packageBuild({ entry: ['src/index.ts', 'src/bin.ts'] });
