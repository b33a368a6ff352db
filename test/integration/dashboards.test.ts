// Grafana cannot be installed here: dashboards are checked by evaluating every panel query (and
// every rule) against the real Prometheus started by `services up`.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { projectPath } from '../../config/paths.js';
import { prometheusUrl, requireService } from '../support/services.js';

const available = await requireService('prometheus');

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function queries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const dir = projectPath('grafana', 'dashboards');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const walk = (panels: Panel[]) => {
      for (const panel of panels) {
        for (const target of panel.targets ?? []) out.push({ where: `${file} › ${panel.title}`, expr: target.expr });
        walk(panel.panels ?? []);
      }
    };
    walk((JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as { panels: Panel[] }).panels);
  }
  const rulesDir = projectPath('grafana', 'prometheus', 'rules');
  for (const file of readdirSync(rulesDir)) {
    const rules = parse(readFileSync(`${rulesDir}/${file}`, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
    for (const group of rules.groups) for (const rule of group.rules) out.push({ where: `${file} › ${rule.alert ?? rule.record}`, expr: rule.expr });
  }
  return out;
}

describe.skipIf(!available)('Grafana dashboards and Prometheus rules', () => {
  it.each(queries())('$where: query is valid PromQL on the real Prometheus', async ({ expr }) => {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; error?: string };
    expect(body.error ?? '').toBe('');
    expect(body.status).toBe('success');
  });
});
