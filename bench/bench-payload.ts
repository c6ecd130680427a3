/** A ~200-byte JSON payload, like a small GitHub event projection, with its send time. */
export function benchPayload(n: number, sentAt: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      n,
      sentAt,
      repo: `octo-org/repository-${n % 97}`,
      type: 'PushEvent',
      actor: `user-${n % 1013}`,
      ref: 'refs/heads/main',
      pad: 'x'.repeat(80),
    }),
  );
}
