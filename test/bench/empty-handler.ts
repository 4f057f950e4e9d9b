// The cold-start yardstick: a Lambda handler that does nothing, bundled exactly like the real ones.
export const handler = async () => ({ statusCode: 200, body: '' });
