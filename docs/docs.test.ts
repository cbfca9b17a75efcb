import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, test } from 'vitest';
import { configFileSchema } from '../packages/cli/src/config-schema.js';
import { substituteEnvironment } from '../packages/cli/src/environment-references.js';

/**
 * Code in the docs cannot rot: every ```ts block of every page is type-checked against the sources
 * (with the root tsconfig's paths), and blocks marked ```ts runnable are run as well.
 *
 * A block is a module of its own, with its imports, as a reader would paste it into a file. The one
 * exception is a block marked ```ts fragment: it continues the page's first ```ts block (the SSE page
 * mounts the `stream` created there), so it is compiled as that block followed by itself. Keep
 * fragments for pages whose sections all build on that first block.
 *
 * The examples on a destination or store page may import the libraries that package lists as
 * dependencies or dev dependencies (express, smtp-server, @aws-sdk/client-s3...), so their imports
 * resolve from that package's folder (adapters/<name>, packages/store-<name>).
 */
const docsFolder = import.meta.dirname;
const repositoryRoot = resolve(docsFolder, '..');
const snippetFolder = join(docsFolder, `.snippets-${process.pid}`);
// The YAML parser the config loader itself uses.
const { parse } = createRequire(join(repositoryRoot, 'packages/cli/package.json'))('yaml') as typeof import('yaml');

interface Snippet {
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  runnable: boolean;
  file: string;
  /** For a fragment, the page's first block, which its file starts with. */
  prelude?: Snippet;
  /** Folders of the packages the page documents, from which the block's imports resolve (the first that resolves). */
  packageFolders?: readonly string[];
}

function pages(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory() && !entry.name.startsWith('.')) return pages(join(folder, entry.name));
    return entry.isFile() && entry.name.endsWith('.md') ? [join(folder, entry.name)] : [];
  });
}

/** The packages a destination or store page documents: docs/destinations/sse.md → adapters/sse; the sending page → the middleware and the PostgreSQL store. */
function documentedPackages(page: string): readonly string[] | undefined {
  const [section, file] = relative(docsFolder, page).split(/[\\/]/);
  const name = file?.replace(/\.md$/, '');
  if (section === 'destinations') return [join(repositoryRoot, 'adapters', name!)];
  if (section === 'stores') return [join(repositoryRoot, 'packages', `store-${name}`)];
  // The frameworks' examples import express, fastify, hono and koa, which the middleware package
  // holds; the outbox examples import pg, knex, kysely, drizzle-orm and better-sqlite3, which the
  // PostgreSQL store holds for its tests.
  if (section === 'sending-from-your-application.md') return [join(repositoryRoot, 'packages', 'middleware'), join(repositoryRoot, 'packages', 'store-postgres')];
  // The observability examples import @opentelemetry/api and set up its SDK, which the opentelemetry package holds.
  if (section === 'observability.md') return [join(repositoryRoot, 'packages', 'opentelemetry')];
  return undefined;
}

function snippets(): Snippet[] {
  const found: Snippet[] = [];
  for (const page of pages(docsFolder).sort()) {
    const text = readFileSync(page, 'utf8');
    let first: Snippet | undefined;
    for (const match of text.matchAll(/^```(ts|typescript)([^\n]*)\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, match.index).split('\n').length;
      const name = relative(docsFolder, page).replace(/[\\/]/g, '_').replace(/\.md$/, '');
      const snippet: Snippet = {
        page: relative(repositoryRoot, page),
        line,
        code: match[3]!,
        runnable: /\brunnable\b/.test(match[2]!),
        file: join(snippetFolder, `${name}.line${line}.ts`),
        packageFolders: documentedPackages(page),
      };
      if (/\bfragment\b/.test(match[2]!)) {
        if (!first) throw new Error(`${snippet.page}:${line}: a ts fragment needs a ts block before it on the page to continue`);
        snippet.prelude = first;
      }
      first ??= snippet;
      found.push(snippet);
    }
  }
  return found;
}

function lineCount(code: string): number {
  return code.split('\n').length - 1;
}

/** ```yaml blocks whose first line is `# egress.config.yaml`: examples of the configuration file. */
function configExamples(): { where: string; text: string }[] {
  return pages(docsFolder)
    .sort()
    .flatMap((page) => {
      const text = readFileSync(page, 'utf8');
      return [...text.matchAll(/^```ya?ml\n(# egress\.config\.yaml\n[\s\S]*?)^```/gm)].map((match) => ({
        where: `${relative(repositoryRoot, page)}:${text.slice(0, match.index).split('\n').length}`,
        text: match[1]!,
      }));
    });
}

const all = snippets();
mkdirSync(snippetFolder, { recursive: true });
// Each block (a fragment after the block it continues) is a module of its own, so top-level await
// and imports work as in a user's file.
for (const snippet of all) writeFileSync(snippet.file, `${snippet.prelude?.code ?? ''}${snippet.code}\nexport {};\n`);
afterAll(() => rmSync(snippetFolder, { recursive: true, force: true }));

describe('docs', () => {
  test('there are code blocks to check', () => {
    expect(all.length).toBeGreaterThan(5);
  });

  test('every ```ts block type-checks against the current API', () => {
    const configFile = ts.readConfigFile(join(repositoryRoot, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, repositoryRoot);
    const compilerOptions = { ...options, noEmit: true, noUnusedLocals: false };
    const host = ts.createCompilerHost(compilerOptions);
    const cache = ts.createModuleResolutionCache(repositoryRoot, (fileName) => fileName, compilerOptions);
    host.resolveModuleNameLiterals = (literals, containingFile, redirectedReference, resolutionOptions) => {
      const packageFolders = all.find((snippet) => snippet.file === containingFile)?.packageFolders;
      const froms = packageFolders ? packageFolders.map((folder) => join(folder, 'docs-example.ts')) : [containingFile];
      return literals.map((literal) => {
        const resolve = (from: string) => ts.resolveModuleName(literal.text, from, resolutionOptions, host, cache, redirectedReference);
        return froms.map(resolve).find((resolved) => resolved.resolvedModule !== undefined) ?? resolve(froms[0]!);
      });
    };
    const program = ts.createProgram(
      all.map((snippet) => snippet.file),
      compilerOptions,
      host,
    );
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.file?.fileName.startsWith(snippetFolder))
      .map((diagnostic) => {
        const snippet = all.find((candidate) => candidate.file === diagnostic.file!.fileName)!;
        let { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        // A problem in a fragment's file is reported where its line is on the page.
        let block = snippet;
        if (snippet.prelude) {
          const preludeLines = lineCount(snippet.prelude.code);
          if (line < preludeLines) block = snippet.prelude;
          else line -= preludeLines;
        }
        return `${block.page}:${block.line + 1 + line}  ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
      });
    // A problem in a page's first block shows again in each fragment that continues it: list it once.
    expect([...new Set(problems)]).toEqual([]);
  }, 180_000);

  test('every relative link between pages points at a file that exists', () => {
    const broken = pages(docsFolder).flatMap((page) =>
      [...readFileSync(page, 'utf8').matchAll(/\]\(([^)#\s]+\.md)(#[^)]*)?\)/g)]
        .map((match) => match[1]!)
        .filter((target) => !/^[a-z]+:/.test(target) && !existsSync(resolve(dirname(page), target)))
        .map((target) => `${relative(repositoryRoot, page)} → ${target}`),
    );
    expect(broken).toEqual([]);
  });

  test('every egress.config.yaml example has the shape the loader accepts', () => {
    const examples = configExamples();
    expect(examples.length).toBeGreaterThan(3);
    const problems = examples.flatMap(({ where, text }) => {
      // Any variable the example references is set, so only the shape is judged.
      const value = substituteEnvironment(parse(text), new Proxy({}, { get: () => 'example-value' })).value;
      const result = configFileSchema.safeParse(value);
      return result.success ? [] : result.error.issues.map((issue) => `${where}  ${issue.path.join('.')}: ${issue.message}`);
    });
    expect(problems).toEqual([]);
  });

  for (const snippet of all.filter((candidate) => candidate.runnable)) {
    test(`runs ${snippet.page}:${snippet.line}`, async () => {
      await import(snippet.file);
    }, 60_000);
  }
});
