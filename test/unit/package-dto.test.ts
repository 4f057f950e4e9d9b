// DTO formatting: build_date on a 24-hour UTC clock, paths for successes and failures, the /builds and /versions items.
import { describe, expect, it } from 'vitest';
import type { BuildView } from '#core/model.js';
import {
  formatBuildDate, toBuildDTO, toPackageDTO, toVersionDTO,
} from '#core/package-dto.js';

function view(over: Partial<BuildView> = {}): BuildView {
  return {
    id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    versionId: 3,
    status: 'succeeded',
    createdAt: new Date('2024-03-05T10:00:00Z'),
    startedAt: null,
    finishedAt: new Date('2024-03-05T21:07:59Z'),
    message: 'ok',
    artifactKey: 'artifacts/x.ep',
    artifactSize: 10,
    artifactSha256: null,
    logKey: null,
    commitSha: null,
    builderId: null,
    otpRelease: '25.3.2',
    namespace: 'comtihon',
    name: 'enot',
    ref: '1.2.0',
    erlVersion: '25',
    ...over,
  };
}

describe('formatBuildDate', () => {
  it('prints yyyy-MM-dd HH:mm in UTC on a 24-hour clock', () => {
    expect(formatBuildDate(new Date('2024-03-05T21:07:59.999Z'))).toBe('2024-03-05 21:07');
    expect(formatBuildDate(new Date('2024-12-31T00:00:00Z'))).toBe('2024-12-31 00:00');
    expect(formatBuildDate(new Date('2024-01-01T01:30:00+03:00'))).toBe('2023-12-31 22:30');
  });
});

describe('toPackageDTO', () => {
  it('renders a success with its download path and finish date', () => {
    expect(toPackageDTO(view())).toEqual({
      build_id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      namespace: 'comtihon',
      name: 'enot',
      success: true,
      path: '/download/0f8fad5b-d9cb-469f-a165-70867728950e',
      build_date: '2024-03-05 21:07',
      version: '1.2.0',
      erl_version: '25',
    });
  });

  it('points a failure at its log', () => {
    const dto = toPackageDTO(view({ status: 'failed' }));
    expect(dto.success).toBe(false);
    expect(dto.path).toBe('/build_log?build_id=0f8fad5b-d9cb-469f-a165-70867728950e');
  });

  it('falls back to the creation date when the build has not finished', () => {
    expect(toPackageDTO(view({ finishedAt: null })).build_date).toBe('2024-03-05 10:00');
  });
});

describe('toBuildDTO and toVersionDTO', () => {
  it('renders /builds items with epoch milliseconds', () => {
    expect(toBuildDTO(view())).toEqual({
      build_id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      result: true,
      message: 'ok',
      artifact_path: '/download/0f8fad5b-d9cb-469f-a165-70867728950e',
      created_date: Date.parse('2024-03-05T10:00:00Z'),
    });
  });

  it('renders /versions items with both id spellings', () => {
    expect(toVersionDTO({ versionId: 9, ref: '1.0', erlVersion: '26' })).toEqual({
      version_id: 9, versionId: 9, ref: '1.0', erl_version: '26',
    });
  });
});
