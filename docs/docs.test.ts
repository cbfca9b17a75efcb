import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, test } from 'vitest';
import { configFileSchema } from '../packages/cli/src/config-schema.js';
import { substituteEnvironment } from '../packages/cli/src/environment-references.js';

/**
 * Code in the docs cannot rot: every ```ts block of the guides (docs/*.md) is type-checked against
 * the sources (with the root tsconfig's paths), and blocks marked ```ts runnable are run as well.
 * The destination and store reference pages (docs/destinations, docs/stores) show fragments that
 * assume a `$send` in scope, so they are not compiled on their own.
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
}

function pages(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory() && !entry.name.startsWith('.')) return pages(join(folder, entry.name));
    return entry.isFile() && entry.name.endsWith('.md') ? [join(folder, entry.name)] : [];
  });
}

function snippets(): Snippet[] {
  const found: Snippet[] = [];
  const guides = pages(docsFolder).filter((page) => relative(docsFolder, page).split(/[\\/]/).length === 1);
  for (const page of guides.sort()) {
    const text = readFileSync(page, 'utf8');
    for (const match of text.matchAll(/^```(ts|typescript)([^\n]*)\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, match.index).split('\n').length;
      const name = relative(docsFolder, page).replace(/[\\/]/g, '_').replace(/\.md$/, '');
      found.push({ page: relative(repositoryRoot, page), line, code: match[3]!, runnable: /\brunnable\b/.test(match[2]!), file: join(snippetFolder, `${name}.line${line}.ts`) });
    }
  }
  return found;
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
// Each block is a module of its own, so top-level await and imports work as in a user's file.
for (const snippet of all) writeFileSync(snippet.file, `${snippet.code}\nexport {};\n`);
afterAll(() => rmSync(snippetFolder, { recursive: true, force: true }));

describe('docs', () => {
  test('there are code blocks to check', () => {
    expect(all.length).toBeGreaterThan(5);
  });

  test('every ```ts block type-checks against the current API', () => {
    const configFile = ts.readConfigFile(join(repositoryRoot, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, repositoryRoot);
    const program = ts.createProgram(
      all.map((snippet) => snippet.file),
      { ...options, noEmit: true, noUnusedLocals: false },
    );
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.file?.fileName.startsWith(snippetFolder))
      .map((diagnostic) => {
        const snippet = all.find((candidate) => candidate.file === diagnostic.file!.fileName)!;
        const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        return `${snippet.page}:${snippet.line + 1 + line}  ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
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
