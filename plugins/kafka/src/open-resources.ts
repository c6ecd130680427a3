/** What a buffer opened (producers, consumers, its state store), so closing the buffer closes them. */
export class OpenResources {
  private readonly open = new Set<{ close(): Promise<void> }>();

  /** `resource`, whose own close now also forgets it here. */
  track<T extends { close(): Promise<void> }>(resource: T): T {
    const close = resource.close.bind(resource);
    this.open.add(resource);
    resource.close = async () => {
      this.open.delete(resource);
      await close();
    };
    return resource;
  }

  /** Closes everything still open; one failing close does not keep the others open. */
  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map((r) => r.close()));
  }
}
