// The path and body shapes of the token-checked /v2 routes (package administration, owner tokens, retirement).
import * as z from 'zod';
import { RETIREMENT_REASONS } from '#core/model.js';
import { ref, segment, uuid } from './schemas.js';

/** /v2/packages/{ns}/{name}/... */
export const packagePath = z.object({ ns: segment, name: segment });
/** /v2/packages/{ns}/{name}/versions/{ref}/... */
export const refPath = packagePath.extend({ ref });
/** /v2/packages/{ns}/{name}/tokens/{id} */
export const tokenPath = packagePath.extend({ id: uuid });
/** /v2/builds/{id}/... */
export const buildPath = z.object({ id: uuid });

export const issueTokenBody = z.object({ label: z.string().max(200).optional() });
export const cloneUrlBody = z.object({ clone_url: z.string() });
export const retirementBody = z.object({
  reason: z.enum(RETIREMENT_REASONS),
  message: z.string().max(500).default(''),
});

/** `{ns, name}` as the core's PackageName. */
export function packageOf(path: { ns: string; name: string }): { namespace: string; name: string } {
  return { namespace: path.ns, name: path.name };
}
