import { type Command } from './command.js';
import { importOptional } from './optional-import.js';
import { UsageError, exitCodes } from './terminal-output.js';

/** The part of `@egress/sse`'s client the command uses. */
type Subscribe = (url: string, options: { channels?: string[]; token?: string; signal?: AbortSignal }) => AsyncIterable<{ id?: string; channel?: string; event?: string; data: unknown }>;

export const tailCommand: Command = {
  name: 'tail',
  summary: 'Subscribe to an Egress SSE stream and print its events as they arrive.',
  usage: '<url> [--channel name]... [--token token] [--json]',
  help: `
Connects to a stream served by @egress/sse, prints the recent events it replays, then live ones;
reconnects and resumes from the last event id when the connection drops. Ctrl-C stops.

Options:
  --channel <name>   only this channel (repeatable)
  --token <token>    bearer token for a stream that requires one (or EGRESS_SSE_TOKEN)
  --json             one JSON object per line: {"id", "channel", "data"}

Examples:
  egress tail http://127.0.0.1:8080/events --channel orders
  EGRESS_SSE_TOKEN=... egress tail https://example.com/egress/events --json | jq .data`,
  options: { channel: { type: 'string', multiple: true }, token: { type: 'string' }, json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals, io }) {
    const [url, ...extra] = positionals;
    if (url === undefined || extra.length > 0) throw new UsageError('expected exactly one stream URL');
    if (!/^https?:\/\//.test(url)) throw new UsageError(`expected an http:// or https:// URL, got "${url}"`);
    const loaded = await importOptional('@egress/sse');
    if (!loaded.ok) {
      io.stderr.write(`egress tail: ${loaded.message}\n`);
      return exitCodes.failure;
    }
    const subscribe = loaded.module.subscribe as Subscribe | undefined;
    if (typeof subscribe !== 'function') {
      io.stderr.write('egress tail: @egress/sse has no subscribe() client; upgrade it\n');
      return exitCodes.failure;
    }
    const token = typeof values.token === 'string' ? values.token : io.environment.EGRESS_SSE_TOKEN;
    const channels = Array.isArray(values.channel) ? values.channel : undefined;
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      for await (const event of subscribe(url, { ...(channels ? { channels } : {}), ...(token ? { token } : {}), signal: controller.signal })) {
        const channel = event.channel ?? event.event ?? 'message';
        io.stdout.write(values.json ? `${JSON.stringify({ id: event.id, channel, data: event.data })}\n` : `${event.id ?? '-'}  ${channel}  ${JSON.stringify(event.data)}\n`);
      }
      return exitCodes.ok;
    } catch (error) {
      if (controller.signal.aborted) return exitCodes.ok;
      throw error;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
