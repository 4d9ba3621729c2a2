// Compare: the semantic diff of two versions grouped by the declared change that explains it, and
// how decisions move on the bundled sample corpus.
import { html, useState, useEffect } from '../vendor/preact-htm.mjs';
import { api, ErrorBox, ACTIONS, ACTORS, KINDS, CHANGE_KIND, download } from '../common.js';

export const title = '对比';

const show = (v) => v === null || v === undefined ? '' : (typeof v === 'string' ? v : JSON.stringify(v));

const ChangeTable = ({ changes }) => html`<table class="small">
  <thead><tr><th>变更</th><th>项目</th><th>之前</th><th>之后</th><th>路径</th><th>章节</th></tr></thead>
  <tbody>${changes.map(c => html`<tr><td><span class=${`badge ${c.kind === 'added' ? 'b-ok' : c.kind === 'removed' ? 'b-bad' : 'b-warn'}`}>${CHANGE_KIND[c.kind]}</span></td>
    <td>${c.label}</td><td class="val">${c.moved_from || show(c.before_text)}</td><td class="val">${c.moved_from ? c.path : show(c.after_text)}</td>
    <td class="mono">${c.path}</td><td>${c.section || ''}</td></tr>`)}</tbody></table>`;

export function DecisionBars({ result }) {
  const rows = [];
  for (const [actor, actions] of Object.entries(result.counts)) {
    for (const [action, kinds] of Object.entries(actions)) {
      for (const [kind, n] of Object.entries(kinds)) rows.push({ actor, action, kind, n });
    }
  }
  const max = Math.max(1, ...rows.map(r => r.n));
  if (!rows.length) return html`<p>样例语料上没有任何决定改变（${result.compared} 次决定）。</p>`;
  return html`<table class="small"><thead><tr><th>角色</th><th>动作</th><th>变化</th><th>工单数</th><th>示例</th></tr></thead>
    <tbody>${rows.map(r => html`<tr><td>${ACTORS[r.actor]}</td><td>${ACTIONS[r.action] || r.action} <span class="mono muted">${r.action}</span></td>
      <td>${KINDS[r.kind] || r.kind}</td>
      <td><span class=${`bar ${r.kind === 'allowed_to_denied' ? 'bad' : r.kind === 'denied_to_allowed' ? 'ok' : ''}`} style=${`width:${Math.max(2, 160 * r.n / max)}px`}></span> ${r.n}</td>
      <td class="mono small">${(result.samples[`${r.actor}.${r.action}.${r.kind}`] || []).join(' ')}</td></tr>`)}</tbody></table>`;
}

export default function Compare({ args }) {
  const [versions, setVersions] = useState(null);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api('versions').then(setVersions, setError); }, []);
  const list = versions?.versions.map(v => v.version) || [];
  const to = args[1] || versions?.in_force || list.at(-1);
  const from = args[0] || list[Math.max(0, list.indexOf(to) - 1)];
  useEffect(() => {
    if (from && to) { setData(null); setError(null); api(`compare?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`).then(setData, setError); }
  }, [from, to]);
  if (!versions) return error ? html`<${ErrorBox} error=${error} />` : html`<p class="muted">加载中…</p>`;
  const go = (a, b) => { location.hash = `#/compare/${a}/${b}`; };
  return html`
    <h1>版本对比 <small class="muted">Compare</small></h1>
    <div class="toolbar">
      <label>从 <select value=${from} onChange=${e => go(e.target.value, to)}>${list.map(v => html`<option value=${v}>${v}</option>`)}</select></label>
      <label>到 <select value=${to} onChange=${e => go(from, e.target.value)}>${list.map(v => html`<option value=${v}>${v}</option>`)}</select></label>
      ${data ? html`<button onClick=${() => download(`diff-${from}-${to}.md`, data.markdown, 'text/markdown')}>下载 Markdown（PR 描述）</button>` : null}
    </div>
    <${ErrorBox} error=${error} />
    ${!data ? (error ? null : html`<p class="muted">计算中…</p>`) : html`
      <p><strong>${data.count}</strong> 项语义变更（新增 ${data.summary.added} · 删除 ${data.summary.removed} · 修改 ${data.summary.changed}），按声明的变更分组。</p>
      ${data.groups.map((g, i) => html`<section class="card">
        ${g.declared ? html`<h3>${i + 1}. ${g.declared.text}</h3>
          <p class="small muted"><code>${g.declared.id}</code> · 版本 ${g.declared.version} · 章节 ${g.declared.section || '—'} ${g.declared.ref ? `· ${g.declared.ref}` : ''}
          ${g.declared.affects_actions.length ? ` · 影响 ${g.declared.affects_actions.join(', ')}` : ''}</p>`
        : html`<h3 class="fail">未声明的变更</h3>`}
        ${g.changes.length ? html`<${ChangeTable} changes=${g.changes} />` : html`<p class="small muted">没有对应的语义变更（只改了说明或注释）。</p>`}
      </section>`)}
      <h2>样例语料上的决定差异</h2>
      <p class="small muted">${data.decisions.tickets} 张工单（examples/tickets + 固定种子的合成工单），商家与买家各问一次，每张在其最后事件后 1 小时；
        ${data.decisions.compared} 次比较${data.decisions.undecidable ? `，${data.decisions.undecidable} 张有一方无法判定` : ''}。</p>
      <${DecisionBars} result=${data.decisions} />
      <details><summary>Markdown（可直接贴为 PR 描述）</summary><textarea rows="16" readonly>${data.markdown}</textarea></details>
    `}
  `;
}
