// Try a ticket: a form and a JSON view of the ticket, actor and `at`; the decision as one card per
// action; a slider on `at` over the ticket's deadlines and the version boundaries; a second
// version side by side; checking a proposal and applying the buyer's answer.
import { html, useState, useEffect, useRef } from '../vendor/preact-htm.mjs';
import { api, ErrorBox, ACTIONS, ACTORS, yuan, fmtTime } from '../common.js';

export const title = '试算';

const HOUR = 3600e3;
const pad = (n) => String(n).padStart(2, '0');
// ISO 8601 in +08:00 (the platform's zone), whole seconds
export function isoCst(ms) {
  const d = new Date(ms + 8 * HOUR);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+08:00`;
}
function latestEvent(ticket) {
  const times = [];
  (function walk(node, key) {
    if (typeof node === 'string' && /^\d{4}-\d\d-\d\dT/.test(node) && !/deadline|respond_by/.test(key)) times.push(Date.parse(node));
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, k);
  })(ticket, '');
  return times.length ? Math.max(...times) : Date.now();
}

function Unlock({ unlock }) {
  if (!unlock) return null;
  if (unlock.kind === 'time') return html`<div class="small">解锁时间：<strong>${fmtTime(unlock.available_at)}</strong></div>`;
  if (unlock.kind === 'input') return html`<div class="small">解锁需要：<code>${unlock.needs}</code></div>`;
  return html`<div class="small">不会解锁（never）</div>`;
}

function Constraints({ c }) {
  if (!c) return null;
  return html`<div class="small">
    ${c.refund_types ? html`<div>退款类型：<code>${c.refund_types.join(', ')}</code></div>` : null}
    ${'max_refund_amount' in c ? html`<div>最高退款：<strong>${yuan(c.max_refund_amount)}</strong></div>` : null}
    ${c.fixed_fields ? html`<div>不可修改：<code>${c.fixed_fields.join(', ')}</code></div>` : null}
    ${'negotiations_remaining' in c ? html`<div>剩余协商次数：<strong>${c.negotiations_remaining ?? '不限'}</strong></div>` : null}
    ${(c.negotiation_types || []).map(t => html`<details><summary>${t.label || t.id} <span class="mono muted">${t.id}</span>（${(t.reasons || []).length} 个协商说明）</summary>
      ${(t.reasons || []).map(r => html`<div class="reason"><strong>${r.text}</strong> <span class="mono muted">${r.id}</span>
        ${r.evidence_required ? html` <span class="badge b-warn">需凭证</span>` : null} ${r.platform_code ? html`<span class="badge b-info">code ${r.platform_code}</span>` : null}
        ${r.message ? html`<div class="muted">“${r.message}”</div>` : null}</div>`)}</details>`)}
    ${Object.entries(c).filter(([k]) => !['refund_types', 'max_refund_amount', 'fixed_fields', 'negotiations_remaining', 'negotiation_types'].includes(k))
      .map(([k, v]) => html`<div>${k}：<code>${JSON.stringify(v)}</code></div>`)}
  </div>`;
}

export function ActionCard({ name, verdict }) {
  const ok = verdict.allowed;
  return html`<article class=${`card action ${ok ? 'allowed' : 'denied'}`} data-action=${name} aria-label=${`${ACTIONS[name] || name}：${ok ? '允许' : '不允许'}`}>
    <h3><span>${ACTIONS[name] || name} <span class="mono muted small">${name}</span></span>
      ${ok ? html`<span class="badge b-ok">✓ 允许</span>` : html`<span class="badge b-bad">✗ 不允许</span>`}</h3>
    ${(verdict.denials || []).map(d => html`<div class="denial"><div><strong>${d.message}</strong></div>
      <div class="small mono">${d.code} · ${d.rule} · §${d.section}${d.platform_error ? ` · 平台错误 ${d.platform_error}` : ''}</div><${Unlock} unlock=${d.unlock} /></div>`)}
    ${(verdict.advice || []).map(a => html`<div class="advice small"><strong>建议：</strong>${a.message}<div class="mono">${a.code} · ${a.rule} · §${a.section}</div></div>`)}
    <${Constraints} c=${verdict.constraints} />
  </article>`;
}

function Decision({ decision, caption }) {
  return html`<div>
    <p class="small muted">${caption ? html`<strong>${caption}</strong> · ` : null}版本 <strong>${decision.policy.version}</strong> · ${ACTORS[decision.actor]} · 状态 <code>${decision.status}</code>
      ${decision.pending_timed_out ? html` · <span class="badge b-warn">方案已超时</span>` : null} · at ${fmtTime(decision.at)}</p>
    <div class="cards">${Object.entries(decision.actions).map(([name, v]) => html`<${ActionCard} name=${name} verdict=${v} />`)}</div>
  </div>`;
}

function Timeline({ timeline, at, onPick }) {
  const start = Date.parse(timeline.from), end = Date.parse(timeline.to);
  const pos = (t) => `${Math.min(100, Math.max(0, (100 * (Date.parse(t) - start)) / (end - start)))}%`;
  const samples = timeline.samples;
  const index = Math.max(0, samples.findIndex(s => Date.parse(s.at) >= Date.parse(at)));
  const even = samples.filter((_, i) => i % 1 === 0);
  return html`<div class="card">
    <label for="at-slider"><strong>时间轴</strong> <span class="small muted">拖动改变 <code>at</code>：期限（红）与版本生效（紫）</span></label>
    <div class="axis" aria-hidden="true">
      ${timeline.marks.map(m => html`<div class=${`mark ${m.kind}`} style=${`left:${pos(m.at)}`} title=${m.labels.join('\n')}><span>${m.kind === 'version' ? m.labels[0] : fmtTime(m.at).slice(5, 16)}</span></div>`)}
      <div class="now" style=${`left:${pos(at)}`}></div>
    </div>
    <input id="at-slider" type="range" min="0" max=${samples.length - 1} value=${index}
      aria-valuetext=${fmtTime(samples[index]?.at)} onInput=${e => onPick(samples[+e.target.value].at)} />
    <div class="small muted" style="display:flex;justify-content:space-between"><span>${fmtTime(timeline.from)}</span><span>${fmtTime(timeline.to)}</span></div>
    <div class="strip" role="img" aria-label="各动作随时间是否允许">
      ${timeline.actions.map(a => html`<span>${ACTIONS[a] || a}</span><div class="lane">${even.map(s => html`<i class=${s.allowed.includes(a) ? 'on' : ''} title=${`${fmtTime(s.at)} ${s.version || ''}`}></i>`)}</div>`)}
    </div>
  </div>`;
}

const FIELDS = [
  ['ticket_id', 'ticket_id'], ['type', '类型 type'], ['status', '状态 status'], ['scenario', '场景 scenario'],
  ['order.category', '品类 category'], ['order.paid_amount', '实付（分）'], ['request.refund_amount', '申请退款（分）'], ['request.evidence_count', '凭证数'],
];
const getPath = (o, p) => p.split('.').reduce((n, k) => (n == null ? n : n[k]), o);
function setPath(o, p, v) {
  const keys = p.split('.'); const copy = structuredClone(o); let n = copy;
  for (const k of keys.slice(0, -1)) n = n[k] ??= {};
  n[keys.at(-1)] = v; return copy;
}

export default function Try() {
  const [examples, setExamples] = useState(null);
  const [versions, setVersions] = useState(null);
  const [text, setText] = useState('');
  const [actor, setActor] = useState('merchant');
  const [at, setAt] = useState('');
  const [compareWith, setCompareWith] = useState('');
  const [result, setResult] = useState(null);
  const [timeline, setTimeline] = useState(null);
  const [error, setError] = useState(null);
  const [checkAction, setCheckAction] = useState('negotiate');
  const [payload, setPayload] = useState('');
  const [rejectReason, setRejectReason] = useState('不同意协商方案');  // sent with a reject answer
  const [checked, setChecked] = useState(null);
  const [applied, setApplied] = useState(null);
  const seq = useRef(0);

  useEffect(() => {
    api('examples').then(ex => { setExamples(ex); const first = Object.keys(ex.tickets)[0]; if (first) pick(ex, first); setPayload(JSON.stringify(Object.values(ex.payloads)[0] || {}, null, 2)); }, setError);
    api('versions').then(setVersions, setError);
  }, []);

  let ticket = null, parseError = null;
  try { ticket = text ? JSON.parse(text) : null; } catch (e) { parseError = e.message; }

  function pick(ex, name) {
    const t = ex.tickets[name];
    setText(JSON.stringify(t, null, 2));
    setAt(isoCst(latestEvent(t) + HOUR));
    setChecked(null); setApplied(null);
  }

  useEffect(() => {   // decide whenever the ticket, actor, at or the compared version change
    if (!ticket || !at) return;
    const mine = ++seq.current;
    api('decide', { ticket, actor, at, compare_version: compareWith || undefined })
      .then(r => { if (mine === seq.current) { setResult(r); setError(null); } }, e => { if (mine === seq.current) { setResult(null); setError(e); } });
  }, [text, actor, at, compareWith]);

  useEffect(() => {   // the slider's samples: only when the ticket or the actor change
    if (!ticket) return;
    api('timeline', { ticket, actor }).then(setTimeline, () => setTimeline(null));
  }, [text, actor]);

  const onField = (path, raw) => {
    if (!ticket) return;
    const number = /amount|count/.test(path);
    setText(JSON.stringify(setPath(ticket, path, number ? Number(raw) : raw), null, 2));
  };
  const doCheck = () => {
    let body; try { body = JSON.parse(payload || '{}'); } catch (e) { setChecked({ error: { message: `payload 不是 JSON：${e.message}` } }); return; }
    api('check', { ticket, action: checkAction, payload: body, at }).then(r => setChecked({ result: r }), e => setChecked({ error: e }));
  };
  // 三-3.2.1: a rejection is submitted with its reason (拒绝原因); accept and timeout take none
  const doApply = (answer) => api('apply', { ticket, answer, at, ...(answer === 'reject' && rejectReason ? { reason: rejectReason } : {}) })
    .then(r => setApplied({ result: r }), e => setApplied({ error: e }));

  if (!examples || !versions) return error ? html`<${ErrorBox} error=${error} />` : html`<p class="muted">加载中…</p>`;
  return html`
    <h1>试算工单 <small class="muted">Try a ticket</small></h1>
    <div class="toolbar" role="group" aria-label="示例工单">
      <span class="small muted">示例：</span>
      ${Object.keys(examples.tickets).map(name => html`<button onClick=${() => pick(examples, name)} data-example=${name}>${name}</button>`)}
    </div>
    <div class="row">
      <section class="card grow" style="max-width:460px">
        <div class="toolbar">
          <label>角色 actor <select id="actor" value=${actor} onChange=${e => setActor(e.target.value)}>${examples.actors.map(a => html`<option value=${a}>${ACTORS[a]} ${a}</option>`)}</select></label>
          <label>at <input id="at" type="text" size="26" value=${at} onChange=${e => setAt(e.target.value)} /></label>
          <label>对比版本 <select id="compare-with" value=${compareWith} onChange=${e => setCompareWith(e.target.value)}>
            <option value="">（不对比）</option>${versions.versions.map(v => html`<option value=${v.version}>${v.version}</option>`)}</select></label>
        </div>
        ${ticket ? html`<div class="toolbar">${FIELDS.map(([p, label]) => html`<label class="small">${label}
          <input type="text" size=${/amount|count/.test(p) ? 7 : 16} value=${getPath(ticket, p) ?? ''} onChange=${e => onField(p, e.target.value)} /></label>`)}</div>` : null}
        <label for="ticket-json" class="small muted">工单 JSON（可直接编辑）</label>
        <textarea id="ticket-json" rows="18" spellcheck="false" value=${text} onInput=${e => setText(e.target.value)}></textarea>
        ${parseError ? html`<p class="err">JSON：${parseError}</p>` : null}
        <h2>检查协商方案 <small class="muted">check</small></h2>
        <div class="toolbar"><label>动作 <select value=${checkAction} onChange=${e => setCheckAction(e.target.value)}>
          ${['negotiate', 'modify_negotiation', 'agree', 'reject', 'modify_return_logistics'].map(a => html`<option value=${a}>${ACTIONS[a]} ${a}</option>`)}</select></label>
          ${Object.entries(examples.payloads).map(([n, p]) => html`<button class="small" onClick=${() => setPayload(JSON.stringify(p, null, 2))}>${n}</button>`)}</div>
        <textarea id="payload-json" rows="7" spellcheck="false" value=${payload} onInput=${e => setPayload(e.target.value)}></textarea>
        <button class="primary" onClick=${doCheck} disabled=${!ticket}>检查方案</button>
        ${checked?.error ? html`<${ErrorBox} error=${checked.error} />` : null}
        ${checked?.result ? html`<div class="card" id="check-result">${checked.result.valid ? html`<span class="badge b-ok">✓ 方案有效</span>` : html`<span class="badge b-bad">✗ 方案无效</span>`}
          ${(checked.result.violations || []).map(v => html`<div class="denial"><strong>${v.message}</strong><div class="small mono">${v.code} · ${v.field || ''} · ${v.rule} · §${v.section}</div></div>`)}</div>` : null}
        <h2>买家回应 <small class="muted">apply</small></h2>
        <div class="toolbar"><label class="small">拒绝原因 reason <input id="reject-reason" type="text" size="24" value=${rejectReason} onInput=${e => setRejectReason(e.target.value)} /></label></div>
        <div class="toolbar">${examples.answers.map(a => html`<button onClick=${() => doApply(a)} disabled=${!ticket}>${{ accept: '接受', reject: '拒绝', timeout: '超时' }[a]} ${a}</button>`)}</div>
        ${applied?.error ? html`<${ErrorBox} error=${applied.error} />` : null}
        ${applied?.result ? html`<div class="card small" id="apply-result">${applied.result.allowed ? html`<span class="badge b-ok">允许</span>` : html`<span class="badge b-bad">不允许</span>`}
          → 状态 <code>${applied.result.status}</code> · ${applied.result.rule} · §${applied.result.section}
          ${(applied.result.effects || []).map(e => html`<div>效果：<code>${e.effect}</code>${e.refund_amount !== undefined ? ` ${yuan(e.refund_amount)}` : ''}</div>`)}
          ${(applied.result.violations || []).map(v => html`<div class="denial">${v.message} <span class="mono">${v.code}</span></div>`)}</div>` : null}
      </section>
      <section class="grow results" style="flex-basis:600px" aria-live="polite">
        ${timeline && at ? html`<${Timeline} timeline=${timeline} at=${at} onPick=${setAt} />` : null}
        <${ErrorBox} error=${error} />
        ${result ? (result.compare || result.compare_error ? html`<div class="side">
            <${Decision} decision=${result.decision} caption="生效版本" />
            ${result.compare ? html`<${Decision} decision=${result.compare} caption=${`对比 ${compareWith}`} />` : html`<${ErrorBox} error=${result.compare_error} />`}</div>`
          : html`<${Decision} decision=${result.decision} />`) : null}
        ${result ? html`<div class="card small"><strong>期限</strong> ${Object.entries(result.decision.deadlines).map(([k, v]) => html` · ${k}: ${fmtTime(v)}`)}</div>` : null}
      </section>
    </div>
  `;
}
