/**
 * Hands one pub/sub message to one subscriber. A throwing subscriber must not silence the others
 * (nor, for Redis, reach the protocol parser), but its failure stays visible as a process warning.
 */
export function deliver(handler: (message: string) => void, message: string): void {
  try {
    handler(message);
  } catch (error) {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.emitWarning('a shared-state subscriber threw', { type: 'SharedStateWarning', detail });
  }
}
