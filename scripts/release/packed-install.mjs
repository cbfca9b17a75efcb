#!/usr/bin/env node
// Installs the packed packages with npm, as a user would, into a fresh project (no workspace links):
// type-checks an app under `moduleResolution: nodenext`, runs it as ESM and as CommonJS against
// local servers for all five destinations and through @egress/middleware's fetch wrapper, then
// runs `npx @egress/cli demo` in an empty folder with the `@egress` scope served from the tarballs.
// Usage: node scripts/release/packed-install.mjs [folder of tarballs]; packs first when none is given.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { prebuiltBetterSqlite, startLocalRegistry } from './local-registry.mjs';
import { packPackages } from './pack-packages.mjs';
import { repositoryRoot } from './workspace-packages.mjs';

const started = Date.now();
const elapsed = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const log = (text) => console.log(`[packed-install] ${text}`);
const given = process.argv[2];
const tarballs = given
  ? readdirSync(resolve(given)).filter((file) => file.endsWith('.tgz')).map((file) => join(resolve(given), file))
  : packPackages(mkdtempSync(join(tmpdir(), 'egress-packed-'))).map((entry) => entry.tarball);
const tarballOf = (name) => {
  const found = tarballs.find((tarball) => tarball.split('/').at(-1).startsWith(`${name.replace('@', '').replace('/', '-')}-`));
  if (!found) throw new Error(`no tarball for ${name}`);
  return found;
};

/** Runs a command to its end without blocking this process, which serves the local registry meanwhile. */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`))));
  });
}

function runCaptured(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function fail(message) {
  throw new Error(message);
}

const npmQuiet = ['--no-audit', '--no-fund', '--loglevel=error'];
const betterSqlite = prebuiltBetterSqlite(repositoryRoot);
const registry = await startLocalRegistry(tarballs, betterSqlite.files);
// npm passes a user config on to the npm it runs inside `npx` (the CLI's `npm exec` of the demo),
// which it does not do for every variable: the scope's registry and the prebuilt binary go there.
const settings = mkdtempSync(join(tmpdir(), 'egress-npm-settings-'));
const userConfig = join(settings, 'npmrc');
const cache = join(tmpdir(), 'egress-release-npm-cache');
const { nodedir } = JSON.parse(execFileSync('npm', ['config', 'list', '--json'], { encoding: 'utf8' }));
writeFileSync(
  userConfig,
  [
    // Kept from the user's own config: where node-gyp finds Node's headers when it must compile.
    ...(nodedir ? [`nodedir=${nodedir}`] : []),
    `@egress:registry=${registry.url}`,
    `cache=${cache}`,
    'update-notifier=false',
    'fund=false',
    'audit=false',
    `better_sqlite3_binary_host=${registry.url}better-sqlite3`,
  ].join('\n') + '\n',
);
const npmEnvironment = { ...process.env, npm_config_userconfig: userConfig, ...betterSqlite.environment(registry.url) };
try {
  const project = mkdtempSync(join(tmpdir(), 'egress-packed-project-'));
  try {
    // 1. The tarballs and the app's own dependencies, with npm: no workspace, no links.
    let step = Date.now();
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'egress-packed-app', private: true }, null, 2));
    const packages = ['core', 'store-sqlite', 'store-postgres', 'testkit', 'cli', 'middleware', 'http', 'email', 's3', 'sql', 'sse', 'opentelemetry'].map((name) => tarballOf(`@egress/${name}`));
    const appDependencies = ['typescript@~5.9.3', '@opentelemetry/api@^1.9.0', '@types/node@^20.19.0', `better-sqlite3@${betterSqlite.version}`, 'smtp-server@^3', 's3rver@^3', '@types/better-sqlite3@^7', '@types/smtp-server@^3', '@types/s3rver@^3'];
    await run('npm', ['install', ...npmQuiet, ...packages, ...appDependencies], { cwd: project, env: npmEnvironment });
    log(`npm install of ${packages.length} tarballs and the app's servers: ${elapsed(step)}`);
    const cliTree = (await runCaptured('npm', ['ls', '--parseable', '@egress/cli'], { cwd: project })).stdout;
    const cliManifest = JSON.parse(execFileSync('tar', ['-xOzf', tarballOf('@egress/cli'), 'package/package.json'], { encoding: 'utf8' }));
    for (const standIn of ['s3rver', 'smtp-server', 'better-sqlite3']) {
      if (standIn in (cliManifest.dependencies ?? {})) fail(`@egress/cli depends on ${standIn}`);
    }
    if (!cliTree.includes('@egress/cli')) fail('@egress/cli is not installed');

    // 2. Type-check and run the same app as ESM and as CommonJS.
    for (const format of ['esm', 'cjs']) {
      step = Date.now();
      const folder = join(project, format);
      mkdirSync(folder);
      writeFileSync(join(folder, 'package.json'), JSON.stringify({ type: format === 'esm' ? 'module' : 'commonjs' }));
      copyFileSync(join(import.meta.dirname, 'packed-app', 'send-everything.ts'), join(folder, 'send-everything.ts'));
      writeFileSync(
        join(folder, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            // The declarations of every installed package are checked too: an import they cannot
            // resolve (a missing @types package) fails here instead of turning an option into `any`.
            skipLibCheck: false,
            types: ['node'],
            outDir: 'dist',
          },
          files: ['send-everything.ts'],
        }),
      );
      await run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', folder], { cwd: project });
      const result = await runCaptured(process.execPath, [join(folder, 'dist', 'send-everything.js')], { cwd: project });
      if (result.code !== 0) fail(`the ${format} app exited ${result.code}\n${result.stdout}${result.stderr}`);
      const facts = JSON.parse(result.stdout.trim().split('\n').at(-1));
      const expectedFormat = format === 'esm' ? 'esm' : 'commonjs';
      if (facts.format !== expectedFormat) fail(`the ${format} app ran as ${facts.format}`);
      for (const destination of ['http', 's3', 'sql', 'email', 'sse']) if (facts[destination] !== 5) fail(`${format}: ${destination} received ${facts[destination]}, expected 5`);
      if (facts.middleware !== 1) fail(`${format}: the @egress/middleware fetch wrapper's event arrived ${facts.middleware} times, expected once`);
      if (result.stderr.includes('NodeVersionSupportWarning')) log(`(${format}: the AWS SDK printed its Node version warning, as it does in any app on Node 20)`);
      log(`${format}: type-checked (nodenext) and ran: ${JSON.stringify(facts)} in ${elapsed(step)}`);
    }
  } finally {
    rmSync(project, { recursive: true, force: true });
  }

  // 3. `npx @egress/cli demo` in an empty folder: the CLI fetches @egress/demo on demand.
  {
    const step = Date.now();
    const empty = mkdtempSync(join(tmpdir(), 'egress-empty-'));
    // npx keeps what it installed under the cache's _npx, by package name: without this, a later run
    // would run the @egress/cli of an earlier one. Downloads from the public registry are kept.
    rmSync(join(cache, '_npx'), { recursive: true, force: true });
    try {
      const result = await runCaptured('npx', ['--yes', '@egress/cli', 'demo', '--orders', '6', '--json'], { cwd: empty, env: npmEnvironment });
      if (result.code !== 0) fail(`npx @egress/cli demo exited ${result.code}\n${result.stdout}\n${result.stderr}`);
      if (!result.stderr.includes('@egress/demo is not installed') || !result.stderr.includes('Fetching @egress/demo@')) fail(`the CLI did not say it fetches @egress/demo:\n${result.stderr}`);
      if (result.stderr.includes('NodeVersionSupportWarning')) fail(`the demo printed the AWS SDK's Node version warning:\n${result.stderr}`);
      const summary = JSON.parse(result.stdout);
      const destinations = Object.keys(summary.destinations).sort().join(',');
      if (destinations !== 'email,http,s3,sql,sse' || summary.store !== 'sqlite') fail(`the demo ran ${destinations} on ${summary.store}`);
      for (const [name, entry] of Object.entries(summary.destinations)) if (entry.delivered === 0) fail(`the demo delivered nothing through ${name}`);
      if (readdirSync(empty).length !== 0) fail(`the demo left files in the empty folder: ${readdirSync(empty).join(', ')}`);
      if (!registry.requested.includes('@egress/demo')) fail('@egress/demo was not fetched from the registry');
      log(`npx @egress/cli demo in an empty folder: ${destinations} delivered on ${summary.store}, ${elapsed(step)}`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  }
  log(`all checks passed in ${elapsed(started)}`);
} catch (error) {
  console.error(`[packed-install] FAIL ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await registry.close();
  rmSync(settings, { recursive: true, force: true });
}
