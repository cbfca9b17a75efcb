import { packageBuild } from '../../tsup.base';

// One entry per framework, so that importing one integration never loads another framework's types or code.
export default packageBuild({ entry: ['src/index.ts', 'src/express.ts', 'src/fastify.ts', 'src/hono.ts', 'src/koa.ts', 'src/fetch.ts'] });
