/** The shape of vitest's `test` (and of most runners' `it`): a name, a body, an optional timeout. */
export type TestFunction = (name: string, body: () => Promise<void>, timeout?: number) => void;
