export type OptionalImport = { ok: true; module: Record<string, unknown> } | { ok: false; message: string };

/**
 * Imports a package that may not be installed (adapters and stores are installed as needed), and
 * says which package to install rather than failing with a resolver stack trace: the package
 * itself, or the dependency it could not find (such as a peer dependency left out).
 */
export async function importOptional(specifier: string): Promise<OptionalImport> {
  try {
    return { ok: true, module: (await import(specifier)) as Record<string, unknown> };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)|Failed to load url/.test(message);
    const wanted = specifier.startsWith('file:') ? new URL(specifier).pathname : specifier;
    const missing = packageName(/Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1]);
    if (notFound && missing !== undefined && missing !== packageName(wanted)) {
      return { ok: false, message: `${wanted} needs package ${missing}, which is not installed (npm install ${missing})` };
    }
    if (notFound && message.includes(wanted)) {
      return {
        ok: false,
        message: specifier.startsWith('@egress/') ? `package ${specifier} is not installed (npm install ${specifier})` : `cannot find module ${wanted}`,
      };
    }
    return { ok: false, message: `${specifier} failed to load: ${message}` };
  }
}

/** The package a bare specifier names (`@scope/name` or `name`, without a subpath); none for a path. */
function packageName(specifier: string | undefined): string | undefined {
  if (specifier === undefined || /^(\.|\/|[a-z]:|file:|node:)/i.test(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
