/**
 * A channel is the SSE `event` field, so it must never hold CR or LF (it would end the field and
 * let a payload forge frames). The charset also keeps it safe in a URL query and a log line.
 */
export const channelPattern = /^[A-Za-z0-9][A-Za-z0-9_.:\/-]{0,127}$/;

/** Control events the stream sends itself; channels may not use this prefix. */
export const reservedChannelPrefix = 'egress-';

/** Why a channel name is refused, or undefined when it is fine. */
export function channelNameProblem(channel: string): string | undefined {
  if (!channelPattern.test(channel)) {
    return 'expected 1 to 128 characters: letters, digits and _ . : / -, starting with a letter or digit';
  }
  if (channel.startsWith(reservedChannelPrefix)) {
    return `the prefix "${reservedChannelPrefix}" is reserved for the stream's control events`;
  }
  return undefined;
}
