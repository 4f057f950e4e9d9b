// The slice of s3rver 3.7's API the tests use; the package ships no types.
declare module 's3rver' {
  interface S3rverBucket {
    name: string;
    configs?: Array<string | Buffer>;
  }

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    serviceEndpoint?: string;
    configureBuckets?: S3rverBucket[];
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    /** Starts the HTTP server; resolves to its bound address. */
    run(): Promise<import('node:net').AddressInfo>;
    close(): Promise<void>;
    reset(): void;
  }

  export default S3rver;
}
