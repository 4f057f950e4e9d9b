// Retiring a ref of a package (hex.pm's retire) and undoing it. A retired ref stays downloadable by its exact ref,
// so locks never break; /versions, /last_builds and POST /get without a ref leave it out; /search shows why.
import { NotFoundError, ValidationError } from './errors.js';
import { RETIREMENT_REASONS, type PackageName, type RetirementReason } from './model.js';
import type { PackageAdminStore } from './ports.js';

export interface RetirementDeps {
  store: Pick<PackageAdminStore, 'getRepository' | 'transaction'>;
}

export const MAX_RETIREMENT_MESSAGE = 500;

function fullNameOf(pkg: PackageName): string {
  return `${pkg.namespace}/${pkg.name}`;
}

async function repositoryIdOf(deps: RetirementDeps, pkg: PackageName): Promise<number> {
  const repository = await deps.store.getRepository(pkg);
  if (!repository) throw new NotFoundError(`No package ${fullNameOf(pkg)}`);
  return repository.id;
}

/**
 * Retires every version of `ref` (each OTP release, and those built later).
 * Input: the reason (one of RETIREMENT_REASONS) and a message of at most MAX_RETIREMENT_MESSAGE characters.
 * Errors: ValidationError for another reason or a longer message; NotFoundError for an unknown package or ref.
 * Retiring again replaces the reason and message.
 */
export async function retireRef(
  deps: RetirementDeps, pkg: PackageName, ref: string, input: { reason: string; message: string },
): Promise<void> {
  if (!(RETIREMENT_REASONS as readonly string[]).includes(input.reason)) {
    throw new ValidationError(`Validation failed: reason must be one of ${RETIREMENT_REASONS.join(', ')}`);
  }
  if (input.message.length > MAX_RETIREMENT_MESSAGE) {
    throw new ValidationError(`Validation failed: message must be at most ${MAX_RETIREMENT_MESSAGE} characters`);
  }
  const repositoryId = await repositoryIdOf(deps, pkg);
  const retirement = { reason: input.reason as RetirementReason, message: input.message, retiredAt: new Date() };
  const found = await deps.store.transaction((tx) => tx.retireRef(repositoryId, ref, retirement));
  if (!found) throw new NotFoundError(`No version ${ref} of ${fullNameOf(pkg)}`);
}

/** Undoes a retirement (no error when the ref was not retired); NotFoundError for an unknown package or ref. */
export async function unretireRef(deps: RetirementDeps, pkg: PackageName, ref: string): Promise<void> {
  const repositoryId = await repositoryIdOf(deps, pkg);
  const found = await deps.store.transaction((tx) => tx.unretireRef(repositoryId, ref));
  if (!found) throw new NotFoundError(`No version ${ref} of ${fullNameOf(pkg)}`);
}
