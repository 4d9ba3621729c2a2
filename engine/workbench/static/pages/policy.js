// Policy: one version as tables (scenarios × negotiation types × reasons, rejection, categories,
// timeouts, limits), every item with its id, guide section, illustrative flag and file:line.
import { html, useState, useEffect } from '../vendor/preact-htm.mjs';
import { api, Where, Illustrative, ErrorBox, REJECTION } from '../common.js';

export const title = '政策';

const Keyed = ({ items, caption }) => html`
  <h2>${caption}</h2>
  <table><thead><tr><th>id</th><th>取值</th><th>章节</th><th>依据</th><th>位置</th></tr></thead>
  <tbody>${items.map(t => html`<tr><td class="mono">${t.id}</td>
    <td class="mono">${Object.entries(t.values).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(' · ')}</td>
    <td>${t.section || '—'}</td><td><${Illustrative} value=${t.illustrative} /></td><td><${Where} where=${t.where} /></td></tr>`)}</tbody></table>`;

export default function Policy({ args }) {
  const [versions, setVersions] = useState(null);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [scenario, setScenario] = useState('');
  useEffect(() => { api('versions').then(setVersions, setError); }, []);
  const version = args[0] || versions?.in_force || versions?.versions.at(-1).version;
  useEffect(() => { if (version) { setData(null); api(`policy/${version}`).then(setData, setError); } }, [version]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!versions || !data) return html`<p class="muted">加载中…</p>`;
  const rows = data.reason_table.filter(r => !scenario || r.scenario === scenario);
  return html`
    <h1>政策 <small class="muted">Policy</small> ${data.version}</h1>
    <div class="toolbar">
      <label>版本 <select value=${version} onChange=${e => { location.hash = `#/policy/${e.target.value}`; }}>
        ${versions.versions.map(v => html`<option value=${v.version}>${v.version}${v.in_force ? '（生效中）' : ''}</option>`)}</select></label>
      <label>场景 <select value=${scenario} onChange=${e => setScenario(e.target.value)}>
        <option value="">全部</option>${data.scenarios.map(s => html`<option value=${s.id}>${s.label}（${s.id}）</option>`)}</select></label>
      <span class="muted small">${data.file} · 模板按样例工单渲染（仅退款 ¥129.00）</span>
    </div>
    <h2>场景 × 协商类型 × 协商说明</h2>
    <div class="scroll"><table>
      <thead><tr><th>场景</th><th>协商类型</th><th>协商说明</th><th>需凭证</th><th>平台代码</th><th>样例文案（已渲染）</th><th>章节</th><th>依据</th><th>位置</th></tr></thead>
      <tbody>${rows.map(r => html`<tr>
        <td>${r.scenario_label}<div class="small mono muted">${r.scenario}</div></td>
        <td>${r.negotiation_type_label}<div class="small mono muted">${r.negotiation_type}</div><${Where} where=${r.offered_at} /></td>
        <td>${r.reason.text}<div class="small mono muted">${r.reason.id}</div></td>
        <td>${r.reason.evidence_required ? html`<span class="badge b-warn">需凭证</span>` : html`<span class="badge b-info">无需</span>`}</td>
        <td class="mono">${r.reason.platform_code ?? '—'}</td>
        <td class="small">${r.reason.message || '—'}</td>
        <td>${r.reason.section}</td><td><${Illustrative} value=${r.reason.illustrative} /></td><td><${Where} where=${r.reason.where} /></td></tr>`)}</tbody>
    </table></div>
    <h2>场景：拒绝方式与升级</h2>
    <table><thead><tr><th>场景</th><th>拒绝方式</th><th>买家拒绝后升级平台</th><th>章节</th><th>依据</th><th>位置</th></tr></thead>
    <tbody>${data.scenarios.map(s => html`<tr><td>${s.label} <span class="small mono muted">${s.id}</span></td>
      <td>${REJECTION[s.rejection] || s.rejection} <span class="small mono muted">${s.rejection}</span></td>
      <td>${s.buyer_reject_escalates ? '是' : '否'}</td><td>${s.section}</td><td><${Illustrative} value=${s.illustrative} /></td><td><${Where} where=${s.where} /></td></tr>`)}</tbody></table>
    <h2>品类限制</h2>
    <table><thead><tr><th>品类</th><th>允许的退款类型</th><th>买家拒绝后升级</th><th>章节</th><th>依据</th><th>位置</th></tr></thead>
    <tbody>${data.categories.map(c => html`<tr><td>${c.label} <span class="small mono muted">${c.id}</span></td>
      <td class="mono">${(c.refund_types || []).join(', ')}</td><td>${c.buyer_reject_escalates ? '是' : '否'}</td>
      <td>${c.section}</td><td><${Illustrative} value=${c.illustrative} /></td><td><${Where} where=${c.where} /></td></tr>`)}</tbody></table>
    <${Keyed} caption="时效 timeouts" items=${data.timeouts} />
    <${Keyed} caption="次数上限 limits" items=${data.limits} />
    <${Keyed} caption="功能 features" items=${data.features} />
    <details><summary><strong>规则 rules（${data.rules.length}）</strong></summary>
      <div class="scroll"><table><thead><tr><th>id</th><th>阶段</th><th>角色</th><th>动作</th><th>结果</th><th>章节</th><th>依据</th><th>位置</th></tr></thead>
      <tbody>${data.rules.map(r => html`<tr><td class="mono">${r.id}</td><td>${r.stage}</td><td>${r.actor || ''}</td>
        <td class="mono small">${[].concat(r.action || []).join(', ')}</td><td class="mono small">${r.effect || ''} ${r.code || ''}</td>
        <td>${r.section}</td><td><${Illustrative} value=${r.illustrative} /></td><td><${Where} where=${r.where} /></td></tr>`)}</tbody></table></div>
    </details>
  `;
}
