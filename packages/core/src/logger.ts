/** The logging Egress does goes through this shape; a pino logger satisfies it as is. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Warnings and errors to the console; debug and info are dropped. */
export const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn(fields, message) {
    console.warn(`[egress] ${message}`, fields);
  },
  error(fields, message) {
    console.error(`[egress] ${message}`, fields);
  },
};

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
