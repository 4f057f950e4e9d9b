// The deployment's settings: typed, defaulted and validated once, whether they come from code or from CDK context.
import { z } from 'zod';

/** An OTP release as the builder image and requests name it: "25", "26.2". */
const otpRelease = z.string().regex(/^\d+(\.\d+)*$/, { message: 'must be an OTP release such as "25" or "26.2"' });

// Context given with `-c key=value` arrives as a string; the same key in cdk.json may be a real list or object.
const list = (item: z.ZodType<string>) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const s = v.trim();
    return s.startsWith('[') ? JSON.parse(s) : s.split(',').map((p) => p.trim()).filter(Boolean);
  }, z.array(item).min(1));

const json = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? JSON.parse(v) : v), schema);

const flag = z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() === 'true' : v), z.boolean());

const email = z.email();

const customDomain = z.object({
  /** e.g. builder.example.org; becomes ENOT_PUBLIC_URL. */
  domainName: z.string().min(1),
  /** An ACM certificate for domainName in the stack's region (regional endpoint). */
  certificateArn: z.string().startsWith('arn:'),
  /** When given, an alias A record for domainName is created in this zone; else point DNS yourself. */
  hostedZone: z.object({ hostedZoneId: z.string().min(1), zoneName: z.string().min(1) }).optional(),
});

export const serviceOptionsSchema = z
  .object({
    /** SES identity the build-result emails are sent from; without it no identity is made and mail is off. */
    senderEmail: email.optional(),
    /** Alarm notifications go to this address (an SNS email subscription to confirm once). */
    alarmEmail: email.optional(),
    /**
     * OTP releases the builder image carries and builds may ask for: exact ones ("26.2.5.6") are built into the
     * image, major ones must be among those buildspec/Dockerfile pins (infra/constructs/build-pipeline.ts).
     */
    otpReleases: list(otpRelease).default(['25', '26', '27']),
    /** The release used when a request names none; one of otpReleases. */
    defaultOtpRelease: otpRelease.default('25'),
    /** URL prefixes builds may clone from (ENOT_ALLOWED_CLONE_URLS, comma-separated, so no commas inside). */
    allowedCloneUrls: list(z.string().min(1).regex(/^[^,]+$/, { message: 'must not contain a comma' })).default([
      'https://github.com/',
    ]),
    customDomain: json(customDomain).optional(),
    logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
    /**
     * One build's time limit: the CodeBuild project's timeout, and the age past which the reaper fails a build
     * still in flight. CodeBuild accepts 5 to 2160 minutes.
     */
    buildTimeoutMinutes: z.coerce.number().int().min(5).max(2160).default(15),
    /** S3 server access logs for the artifact bucket, into a second bucket. */
    bucketAccessLogs: flag.default(false),
  })
  .refine((o) => o.otpReleases.includes(o.defaultOtpRelease), {
    message: 'defaultOtpRelease must be one of otpReleases',
    path: ['defaultOtpRelease'],
  });

/** Settings with every default applied. */
export type ServiceOptions = z.output<typeof serviceOptionsSchema>;

/** What a caller may give: any subset, in the shapes context allows. */
export type ServiceOptionsInput = z.input<typeof serviceOptionsSchema>;

export type CustomDomain = NonNullable<ServiceOptions['customDomain']>;

/** The context keys read by infra/app.ts, one per option. */
export const CONTEXT_KEYS = [
  'senderEmail', 'alarmEmail', 'otpReleases', 'defaultOtpRelease', 'allowedCloneUrls', 'customDomain',
  'logLevel', 'buildTimeoutMinutes', 'bucketAccessLogs',
] as const satisfies readonly (keyof ServiceOptionsInput)[];

/** Validates and defaults the settings; throws one error listing every problem. */
export function resolveServiceOptions(input: unknown = {}): ServiceOptions {
  let parsed;
  try {
    parsed = serviceOptionsSchema.safeParse(input);
  } catch (error) {
    // A JSON.parse inside a preprocess step (a malformed -c value) throws instead of reporting an issue.
    throw new Error(`Invalid enot-builder settings: ${(error as Error).message}`);
  }
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(settings)'}: ${i.message}`).join('; ');
    throw new Error(`Invalid enot-builder settings: ${problems}`);
  }
  return parsed.data;
}

/** The settings from CDK context (`-c key=value` or cdk.json "context"), keys left unset taking their defaults. */
export function serviceOptionsFromContext(tryGetContext: (key: string) => unknown): ServiceOptions {
  const input: Record<string, unknown> = {};
  for (const key of CONTEXT_KEYS) {
    const value = tryGetContext(key);
    if (value !== undefined && value !== '') input[key] = value;
  }
  return resolveServiceOptions(input);
}
