// POST /callback: the GitHub webhook. API Gateway -> authenticateWebhook -> requestTagBuild -> Store, BuildQueue.
// The signature covers the exact bytes GitHub sent, so this endpoint reads the raw body itself, before any
// parsing: event.body, base64-decoded when API Gateway marked it so (no jsonBody middleware here).
// GitHub delivers every repository's hooks from the same few addresses, so a per-address budget would let one busy
// repository starve all others: a signed delivery spends its repository's budget of new builds instead.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ValidationError } from '#core/errors.js';
import { acknowledgeWebhook, classifyWebhook, requestTagBuild } from '#core/request-builds.js';
import { headerValue } from '#core/headers.js';
import { authenticateWebhook } from '#core/webhook-signature.js';
import { repositoryBuildBudget } from '#core/rate-limits.js';
import { endpoint } from '#functions/service-endpoint.js';
import { withinBudget } from '#http/build-budget.js';
import { ok } from '#http/envelope.js';
import { parseWith, tagCreatedEvent } from '#http/schemas.js';

function rawBody(event: APIGatewayProxyEvent): Buffer {
  if (event.body == null) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/** The payload: a JSON body, or GitHub's form encoding (`payload=<json>`) when the hook is set up that way. */
function payloadOf(body: Buffer, contentType: string | undefined): unknown {
  let text = body.toString('utf8');
  if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    text = new URLSearchParams(text).get('payload') ?? '';
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`Malformed JSON body: ${(e as Error).message}`);
  }
}

export const handler = endpoint({}, async ({ event, deps, log }) => {
  const body = rawBody(event);
  await authenticateWebhook(deps.webhookSecret, body, event.headers);
  const payload = payloadOf(body, headerValue(event.headers, 'Content-Type'));
  const action = classifyWebhook(headerValue(event.headers, 'X-GitHub-Event'), payload);
  if (action.kind !== 'tag') return ok(acknowledgeWebhook(deps, action));
  const tag = parseWith(tagCreatedEvent, 'body', payload);
  if (!tag.ok) throw new ValidationError(tag.message);
  const budget = repositoryBuildBudget(`${tag.data.repository.full_name.namespace}/${tag.data.repository.full_name.name}`);
  return ok(await withinBudget(deps, event, log, budget, (store) => requestTagBuild({ ...deps, store, log }, {
    deliveryId: headerValue(event.headers, 'X-GitHub-Delivery'),
    pkg: tag.data.repository.full_name,
    ref: tag.data.ref,
    cloneUrl: tag.data.repository.clone_url,
  })));
});
