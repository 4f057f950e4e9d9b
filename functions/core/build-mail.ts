// The build-result email: what a person needs to act on a build (package, ref, release, result, links).
import type { BuildJobView, Mail } from './ports.js';

// Deliberately narrow: the address may come from a commit's metadata, and it becomes a mail header.
const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** True for an address safe to put in a To: header. */
export function isMailAddress(s: string): boolean {
  return s.length <= 254 && EMAIL.test(s);
}

/** The result email of a finished build, to `to`. */
export function composeBuildMail(build: BuildJobView, to: string, publicUrl: string): Mail {
  const pkg = `${build.namespace}/${build.name}`;
  const succeeded = build.status === 'succeeded';
  const release = build.otpRelease ?? build.erlVersion;
  const logUrl = `${publicUrl}/build_log?build_id=${build.id}`;
  const lines = [
    `Package:     ${pkg}`,
    `Version:     ${build.ref}`,
    `OTP release: ${release}`,
    `Result:      ${succeeded ? 'succeeded' : 'failed'}`,
    ...(build.message ? [`Message:     ${build.message}`] : []),
    ...(build.commitSha ? [`Commit:      ${build.commitSha}`] : []),
    '',
    ...(succeeded ? [`Download: ${publicUrl}/download/${build.id}`] : []),
    `Build log: ${logUrl}`,
    '',
    succeeded
      ? `Fetch it with enot, or: curl -o ${build.name}.ep ${publicUrl}/download/${build.id}`
      : `Fix the problem, tag again, or ask for a rebuild: POST ${publicUrl}/rebuild {"build_id": "${build.id}"}`,
    '',
    'enot-builder',
  ];
  return {
    to,
    subject: `${pkg} ${build.ref} (OTP ${build.erlVersion}): build ${succeeded ? 'succeeded' : 'failed'}`,
    text: lines.join('\n') + '\n',
  };
}
