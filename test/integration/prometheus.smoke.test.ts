import { describe, expect, it } from 'vitest';
import { prometheusUrl, requireService } from '../support/services.js';

const available = await requireService('prometheus');

describe.skipIf(!available)('Prometheus smoke (Debian prometheus with the grafana/ config)', () => {
  it('loaded the shipped scrape jobs and answers PromQL', async () => {
    const targets = (await (await fetch(`${prometheusUrl}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string } }[] } };
    const jobs = new Set(targets.data.activeTargets.map((t) => t.labels.job));
    expect(jobs).toEqual(new Set(['instock-engine', 'instock-gateway', 'prometheus']));
    const query = (await (await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent('count(up)')}`)).json()) as { status: string; data: { result: { value: [number, string] }[] } };
    expect(query.status).toBe('success');
    expect(Number(query.data.result[0]!.value[1])).toBe(3);
  });

  it('loaded the shipped alerting rules', async () => {
    const rules = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: { name: string }[] } };
    expect(rules.data.groups.map((g) => g.name)).toContain('instock-up');
  });
});
