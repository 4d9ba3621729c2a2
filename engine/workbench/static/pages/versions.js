// Versions: the effective-date timeline and each version's changelog rows in the guide's words.
import { html, useState, useEffect } from '../vendor/preact-htm.mjs';
import { api, fmtTime, ErrorBox } from '../common.js';

export const title = '版本';

function status(v) {
  if (v.in_force) return html`<span class="badge b-ok">当前生效</span>`;
  if (v.scheduled) return html`<span class="badge b-warn">待生效</span>`;
  return html`<span class="badge b-info">已被取代</span>`;
}

export default function Versions() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api('versions').then(setData, setError); }, []);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<p class="muted">加载中…</p>`;
  const newestFirst = [...data.versions].reverse();
  return html`
    <h1>版本时间线 <small class="muted">Versions</small></h1>
    <p class="muted small">现在（${fmtTime(data.at)}）生效：<strong>${data.in_force || '无'}</strong> · bundle <code>${data.bundle_hash.slice(0, 12)}</code></p>
    <div class="timeline" role="list" aria-label="生效时间线">
      ${data.versions.map(v => html`<a role="listitem" href=${`#/policy/${v.version}`}
          class=${`seg ${v.in_force ? 'now' : ''} ${v.scheduled ? 'scheduled' : ''}`}>
        <strong>${v.date}</strong><br/><span class="small muted">${fmtTime(v.effective_from)} 起</span></a>`)}
    </div>
    ${newestFirst.map(v => html`
      <section class="card" id=${`v-${v.version}`}>
        <h2 style="margin-top:0">${v.date} ${status(v)} <small class="muted mono">${v.file}</small></h2>
        <p class="small muted">生效 ${fmtTime(v.effective_from)}${v.effective_until ? ` — ${fmtTime(v.effective_until)}` : ' 起（最新）'}
          · 规则 <strong>${v.counts.rules}</strong> · 场景 <strong>${v.counts.scenarios}</strong> · 协商说明 <strong>${v.counts.reasons}</strong>
          · 协商类型 ${v.counts.negotiation_types} · 品类 ${v.counts.categories}
          · <a href=${`#/policy/${v.version}`}>查看政策</a>${v.previous ? html` · <a href=${`#/compare/${v.previous}/${v.version}`}>与 ${v.previous} 对比</a>` : null}</p>
        <table>
          <thead><tr><th>调整内容（指南原文）</th><th>章节</th><th>备注</th><th>语义变更</th><th>影响的动作</th></tr></thead>
          <tbody>${v.changelog.map(row => html`<tr>
            <td>${row.text}<div class="small muted mono">${row.id}</div>${row.note ? html`<div class="small muted">${row.note}</div>` : null}</td>
            <td>${row.section || '—'}</td><td>${row.ref || ''}</td>
            <td>${v.previous ? row.change_count : '—'}</td>
            <td class="small">${row.affects_actions.join(', ') || '—'}</td></tr>`)}
          </tbody>
        </table>
        ${v.undeclared.length ? html`<p class="err">未声明的变更：${v.undeclared.join(', ')}</p>` : null}
      </section>`)}
  `;
}
