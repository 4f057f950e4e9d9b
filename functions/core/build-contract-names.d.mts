// The types of build-contract-names.mjs (plain JavaScript, so the build scripts import it without TypeScript);
// the names themselves, and what each means, are there.

export declare const BUILD_ENV: Readonly<{
  buildId: string; namespace: string; name: string; fullName: string; cloneUrl: string; ref: string;
  erlVersion: string; timeoutS: string;
}>;

export declare const RUNNER_ENV: Readonly<{
  scripts: string; workDir: string; outDir: string; otpInstalls: string; otpRoot: string; otpVersion: string;
  sandbox: string; logMaxBytes: string; memoryMb: string; diskMb: string; maxProcesses: string; logLineMaxBytes: string;
  uploadBucket: string; task: string; cloneRewrite: string;
  allowedCloneUrls: string; hexRepoUrl: string; hexPublicKey: string; depsMaxDepth: string; depsMaxCount: string; depsMaxBytes: string;
}>;

export declare const BUILD_LIMIT_DEFAULTS: Readonly<{
  memoryMb: number; diskMb: number; maxProcesses: number; logLineMaxBytes: number;
}>;

/** A build's three outputs, by role. */
type Outputs = Readonly<{ artifact: string; log: string; result: string }>;

export declare const UPLOAD_FORM_ENV: Outputs;
export declare const UPLOAD_CHECKSUM_FIELD: string;
export declare const OUTPUT_CONTENT_TYPES: Outputs;
export declare const BUILD_OUTPUT: Outputs;
export declare function buildBlobKeys(buildId: string): { artifact: string; log: string; result: string };

export declare function ertsBlobKey(release: string, ertsVersion: string): string;
export declare const ERTS_INDEX_KEY: string;
export declare const ERTS_CONTENT_TYPES: Readonly<{ tarball: string; index: string }>;
