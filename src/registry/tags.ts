/** Tags: the list, following Link pagination. */
import { remember } from '../concurrency.ts';
import type { RegistryClient } from './client.ts';
import type { HttpAnswer } from './http.ts';
import { type Repository, formatRepository } from './reference.ts';
import { RegistryError } from './retry.ts';
import type { CallOptions, RegistryTransport } from './transport.ts';

/** Every tag of the repository, following Link pagination; [] when the repository is unknown. */
export async function listTags(t: RegistryTransport, repo: Repository, opts: CallOptions & { readonly pageSize?: number } = {}): Promise<string[]> {
  return (await pages(t, repo, opts, 10_000)).tags;
}

/** The tags when the whole list fits in `maxPages` pages, else undefined. */
export async function listTagsWithin(t: RegistryTransport, repo: Repository, maxPages: number, opts: CallOptions & { readonly pageSize?: number } = {}): Promise<string[] | undefined> {
  const { tags, complete } = await pages(t, repo, opts, maxPages);
  return complete ? tags : undefined;
}

async function pages(t: RegistryTransport, repo: Repository, opts: CallOptions & { readonly pageSize?: number }, maxPages: number): Promise<{ tags: string[]; complete: boolean }> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'list tags of');
  const tags: string[] = [];
  let url: URL | undefined = t.repoUrl(repo, 'tags/list');
  url.searchParams.set('n', String(opts.pageSize ?? 1000));
  for (let page = 0; url && page < maxPages; page++) {
    const res: HttpAnswer = await t.send({
      session, method: 'GET', url, scopes: t.scopes(repo, opts.access), ok: [200, 404], what: 'tag list', action, signal: opts.signal, retry: true, buffer: true,
    });
    const text = await res.text();
    if (res.status === 404) return { tags, complete: true };
    let body: { tags?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RegistryError(`${action}: the tag list is not JSON`, { hint: 'the registry is not following the distribution spec' });
    }
    if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
    const next = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(res.headers.get('link') ?? '')?.[1];
    url = next ? new URL(next, url) : undefined;
  }
  return { tags, complete: url === undefined };
}

/** `host/repo` → its tags as a run first saw them, or undefined when the list is longer than a page or cannot be read. */
export type TagListMemo = Map<string, Promise<ReadonlySet<string> | undefined>>;

/**
 * The repository's tags when they fit in one page, asked once per run: what says which
 * `sha256-<hex>` fallback and legacy cosign tags exist, so that those it lacks are not asked
 * for, at a source or a destination. A longer or unreadable list is no answer.
 */
export function listedTags(client: RegistryClient, repo: Repository, memo: TagListMemo, signal?: AbortSignal): Promise<ReadonlySet<string> | undefined> {
  const name = formatRepository(repo);
  return remember(memo, name, async () => {
    const tags = await client.listTagsWithin(repo, 1, { signal, action: `list tags of ${name}` }).catch(() => undefined);
    return tags && new Set(tags);
  });
}
