// Which registry a request is for: decoded ?ns= (containerd) → a /v2/<registry>/… path prefix (podman, skopeo)
// → the configured default (Docker). Only configured registries (or "*") are served: never an open proxy.
import { isRegistryName } from '../config/registries.js';
import { OciError } from '../oci/errors.js';
import { checkName } from '../oci/names.js';

export interface Route {
  registry: string;
  /** Normalised repository at that registry ("library/alpine"). */
  repo: string;
  /** How the client named it (for Link rewriting): the path name, and whether it used ns. */
  clientName: string;
  viaNs: boolean;
}

export interface RoutingTable {
  defaultRegistry: string;
  /** True when the registry has its own mirror entry or "*" exists. */
  serves(registry: string): boolean;
}

export function resolveRoute(name: string, ns: string | undefined, table: RoutingTable): Route {
  let registry: string;
  let repo = name;
  if (ns !== undefined && ns !== '') {
    registry = ns.toLowerCase();
    if (!isRegistryName(registry) || registry === '*') throw new OciError('NAME_INVALID', { ns }, { message: 'invalid ns parameter: expected a registry host[:port]' });
  } else {
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      // The first component names a registry (as in an image reference); an unconfigured one is refused below
      // rather than passed to the default registry as part of a repository name.
      if (!isRegistryName(first)) throw new OciError('NAME_INVALID', { name }, { message: `invalid registry prefix ${JSON.stringify(first)}` });
      registry = first.toLowerCase();
      repo = name.slice(slash + 1);
    } else {
      registry = table.defaultRegistry;
    }
  }
  if (!table.serves(registry)) {
    throw new OciError('NAME_UNKNOWN', { registry }, { message: `registry ${registry} is not configured on this mirror` });
  }
  checkName(repo);
  if ((registry === 'docker.io' || registry === 'index.docker.io') && !repo.includes('/')) repo = `library/${repo}`;
  return { registry, repo, clientName: name, viaNs: ns !== undefined && ns !== '' };
}
