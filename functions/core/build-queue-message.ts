// The body of a build queue message on AWS: what the SQS queue adapter sends and the dispatcher (workers/start-build) reads.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The body of a build queue message. The dispatcher reads it back with parseBuildMessage. */
export function buildMessageBody(buildId: string): string {
  return JSON.stringify({ buildId });
}

/** The build id a message carries, or null when the body is not a build message (nothing to retry). */
export function parseBuildMessage(body: string): string | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== 'object' || parsed === null) return null;
    const buildId = (parsed as { buildId?: unknown }).buildId;
    return typeof buildId === 'string' && UUID.test(buildId) ? buildId : null;
  } catch {
    return null;
  }
}
