interface Pending<Item, Result> {
  readonly item: Item;
  readonly resolve: (result: Result) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Calls of one kind made while one of them waits for the transaction group join it and are applied
 * by one operation: many single-event enqueues in one turn insert their rows with one sequence
 * update and a few multi-row statements, many single-event batches settled in one turn write their
 * partition's totals once. Should the operation fail, each call is tried again on its own, so one
 * that cannot be written fails alone.
 */
export class TurnBatch<Item, Result> {
  private pending: Pending<Item, Result>[] | undefined;

  constructor(
    /** Submits one operation that applies every item, in order, and returns their results in order. */
    private readonly submitAll: (take: () => readonly Item[]) => Promise<Result[]>,
    private readonly submitOne: (item: Item) => Promise<Result>,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (this.pending) {
        this.pending.push({ item, resolve, reject });
        return;
      }
      const group: Pending<Item, Result>[] = [{ item, resolve, reject }];
      this.pending = group;
      // The operation takes the group when it runs: calls made until then are in it.
      const take = () => {
        if (this.pending === group) this.pending = undefined;
        return group.map((pending) => pending.item);
      };
      this.submitAll(take).then(
        (results) => group.forEach((pending, index) => pending.resolve(results[index]!)),
        (error: unknown) => {
          if (this.pending === group) this.pending = undefined;
          if (group.length === 1) {
            group[0]!.reject(error);
            return;
          }
          for (const pending of group) this.submitOne(pending.item).then(pending.resolve, pending.reject);
        },
      );
    });
  }
}
