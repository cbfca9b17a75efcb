/** The demo's workload: a small shop whose orders fan out to every destination. */
export interface Order {
  id: string;
  number: number;
  customer: { name: string; email: string };
  items: { sku: string; name: string; quantity: number; price: number }[];
  total: number;
  currency: 'EUR';
  placedAt: string;
}

const customers = [
  { name: 'Ada Lovelace', email: 'ada@example.com' },
  { name: 'Grace Hopper', email: 'grace@example.com' },
  { name: 'Katherine Johnson', email: 'katherine@example.com' },
  { name: 'Margaret Hamilton', email: 'margaret@example.com' },
  { name: 'Radia Perlman', email: 'radia@example.com' },
];

const catalogue = [
  { sku: 'MUG-01', name: 'Enamel mug', price: 12.5 },
  { sku: 'TEE-02', name: 'Organic T-shirt', price: 24 },
  { sku: 'NB-03', name: 'Dotted notebook', price: 9.9 },
  { sku: 'PEN-04', name: 'Fountain pen', price: 39 },
  { sku: 'BAG-05', name: 'Canvas tote bag', price: 15 },
];

/** Deterministic orders, so every run of the demo tells the same story. */
export function demoOrders(count: number, now = Date.now()): Order[] {
  return Array.from({ length: count }, (_, index) => {
    const items = Array.from({ length: 1 + (index % 3) }, (_, line) => {
      const product = catalogue[(index + line * 2) % catalogue.length]!;
      return { ...product, quantity: 1 + ((index + line) % 2) };
    });
    const total = Math.round(items.reduce((sum, item) => sum + item.price * item.quantity, 0) * 100) / 100;
    const number = 1001 + index;
    return {
      id: `ord_${number}`,
      number,
      customer: customers[index % customers.length]!,
      items,
      total,
      currency: 'EUR',
      placedAt: new Date(now - (count - index) * 1000).toISOString(),
    };
  });
}
