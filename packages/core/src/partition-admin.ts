import type { EventHub } from './egress-events.js';
import { EgressConfigurationError } from './errors.js';
import type { PartitionState, Store } from './store.js';

/** Turning partitions off and on by hand (`egress.enable`, `egress.disable`, the `egress enable` command). */
export class PartitionAdmin {
  constructor(
    private readonly store: Store,
    private readonly events: EventHub,
    /** Throws when no destination has this name. */
    private readonly checkDestination: (name: string, at: string) => void,
  ) {}

  /** Paused and disabled partitions; none when the store keeps no partition states. */
  async list(query: { destination?: string } = {}): Promise<PartitionState[]> {
    if (query.destination !== undefined) this.checkDestination(query.destination, 'partitions');
    if (!this.store.partitionStates) return [];
    const states = await this.store.partitionStates({ destination: query.destination });
    return states.sort((a, b) => a.destination.localeCompare(b.destination) || a.partition.localeCompare(b.partition));
  }

  /** Clears the state of one partition, or of every paused or disabled partition of the destination; returns how many. */
  async enable(destination: string, partition?: string): Promise<number> {
    const setState = this.writer('enable');
    this.checkDestination(destination, 'enable');
    const states = await this.store.partitionStates!({ destination });
    let enabled = 0;
    for (const state of states) {
      if (partition !== undefined && state.partition !== partition) continue;
      const written = await setState({ destination, partition: state.partition, next: undefined, expected: { state: state.state } });
      if (!written) continue;
      enabled += 1;
      this.events.emit('resumed', { destination, partition: state.partition, by: 'enable' });
    }
    return enabled;
  }

  /** Stops delivering one partition until it is enabled; its events wait. Returns false when it was disabled already. */
  async disable(destination: string, partition: string, reason = 'disabled by hand'): Promise<boolean> {
    const setState = this.writer('disable');
    this.checkDestination(destination, 'disable');
    if (typeof partition !== 'string') throw new EgressConfigurationError(`expected a partition name, got ${JSON.stringify(partition)}`, 'disable');
    const current = (await this.store.partitionStates!({ destination })).find((state) => state.partition === partition);
    if (current?.state === 'disabled') return false;
    const now = Date.now();
    const next = { state: 'disabled' as const, since: current?.since ?? now, probeAt: 0, failures: current?.failures ?? 0, reason };
    const written = await setState({ destination, partition, next, expected: current ? { state: current.state } : { state: 'running' } });
    if (written) this.events.emit('disabled', { destination, partition, failures: next.failures, reason, by: 'disable' });
    return written;
  }

  private writer(action: string): NonNullable<Store['setPartitionState']> {
    const { store } = this;
    if (!store.setPartitionState || !store.partitionStates) {
      throw new EgressConfigurationError(`the ${store.kind} store keeps no partition states, so partitions cannot be disabled or enabled`, action);
    }
    return (change) => store.setPartitionState!(change);
  }
}
