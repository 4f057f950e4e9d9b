// The types of job-inputs.mjs (plain JavaScript, so the build scripts use it without TypeScript), for the tests
// that run its rules against the service's own.
export function gitTagNameProblem(name: string): string | undefined;
export function refProblem(ref: unknown): string | undefined;
export const OTP_RELEASE: RegExp;
export function parseCloneUrl(url: unknown):
  | { scheme: 'https' | 'file'; canonical: string; path: string; problem?: undefined }
  | { problem: string; scheme?: undefined; canonical?: undefined; path?: undefined };
