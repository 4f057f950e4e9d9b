// The build path (request -> queue -> build -> artifact): the seam where its figures will go.

export interface BuildPathResult {
  measured: false;
  note: string;
}

/**
 * Not measured yet: there is no build pipeline to load. When there is, this runs N builds of a small
 * fixture repository (a file:// clone URL) through POST /buildAsync on the local server and reports
 * time to start, build duration and builds per minute, with the same targets-table treatment as reads.
 */
export async function measureBuildPath(): Promise<BuildPathResult> {
  return { measured: false, note: 'not measured: build pipeline not built yet' };
}
