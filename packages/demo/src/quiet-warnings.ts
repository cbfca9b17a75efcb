/**
 * The AWS SDK warns on every run under Node 20 that its releases from 2027 need Node 22. A person
 * running the demo or a command can do nothing about it there, so it stays quiet unless they ask for
 * warnings: by setting the SDK's own variable, or by running Node with `--trace-warnings`.
 */
export function quietAwsNodeVersionWarning(environment: NodeJS.ProcessEnv = process.env, nodeOptions: readonly string[] = process.execArgv): void {
  const variable = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
  if (environment[variable] !== undefined) return;
  const asked = [...nodeOptions, ...(environment.NODE_OPTIONS ?? '').split(/\s+/)].includes('--trace-warnings');
  if (!asked) environment[variable] = 'true';
}
