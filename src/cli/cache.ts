export async function cacheCommand(): Promise<number> { return 2; }
