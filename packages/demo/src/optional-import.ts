export type OptionalImport = { ok: true; module: Record<string, unknown> } | { ok: false; message: string };

/**
 * Imports a package that may not be installed (adapters and stores are installed as needed), and
 * says which package to install rather than failing with a resolver stack trace.
 */
export async function importOptional(specifier: string): Promise<OptionalImport> {
  try {
    return { ok: true, module: (await import(specifier)) as Record<string, unknown> };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)|Failed to load url/.test(message);
    if (notFound && message.includes(specifier.startsWith('file:') ? new URL(specifier).pathname : specifier)) {
      return {
        ok: false,
        message: specifier.startsWith('@egress/')
          ? `package ${specifier} is not installed (npm install ${specifier})`
          : `cannot find module ${specifier.startsWith('file:') ? new URL(specifier).pathname : specifier}`,
      };
    }
    return { ok: false, message: `${specifier} failed to load: ${message}` };
  }
}
