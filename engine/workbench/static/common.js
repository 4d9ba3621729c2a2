// Shared by the pages: the JSON client, labels for actions and codes, small view helpers.
import { html } from './vendor/preact-htm.mjs';

export class ApiError extends Error {
  constructor(message, problems = [], status = 0) { super(message); this.problems = problems; this.status = status; }
}

export async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(`api/${path}`, init);
  const data = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
  if (!response.ok) throw new ApiError(data.error?.message || `HTTP ${response.status}`, data.error?.problems || [], response.status);
  return data;
}

export const ACTIONS = {
  agree: '同意', reject: '拒绝', negotiate: '发起协商', modify_negotiation: '修改协商方案', extend_receipt: '延长收货时间',
  modify_return_logistics: '修改退货物流', intercept_logistics: '物流拦截', withdraw_negotiation: '撤回协商',
  accept_negotiation: '接受协商', reject_negotiation: '拒绝协商', contact_merchant: '联系商家', cancel_aftersale: '取消售后',
  modify_aftersale: '修改售后申请', request_platform_intervention: '申请平台介入', update_return_logistics: '修改物流信息',
};
export const ACTORS = { merchant: '商家', buyer: '买家' };
export const REJECTION = { allowed: '可直接拒绝', guided: '引导先协商', negotiation_required: '须先协商' };
export const KINDS = {
  allowed_to_denied: '允许→拒绝', denied_to_allowed: '拒绝→允许', denial_codes_changed: '拒绝原因改变', advice_changed: '建议改变',
  refund_types_changed: '退款类型改变', max_refund_amount_changed: '最高退款额改变', reasons_changed: '可选协商说明改变',
  reason_terms_changed: '协商说明条款改变',
};
export const CHANGE_KIND = { added: '新增', removed: '删除', changed: '修改' };

export const yuan = (fen) => (fen === null || fen === undefined) ? '—' : `¥${(fen / 100).toFixed(2)}`;

export function fmtTime(iso) {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/:00(\+08:00)$/, '$1').replace('+08:00', '');
}

export const Where = ({ where }) => where ? html`<span class="where" title="文件:行">${where.file}:${where.line}</span>` : null;

export const Illustrative = ({ value }) => {
  if (!value) return html`<span class="badge b-ok" title="指南有明文">指南</span>`;
  const fields = Array.isArray(value) ? value.join('、') : '整项';
  return html`<span class="badge b-ill" title="指南未说明，示意值">示意：${fields}</span>`;
};

export const ErrorBox = ({ error }) => error ? html`<div class="err" role="alert"><strong>${error.message}</strong>
  ${error.problems?.length ? html`<ul>${error.problems.map(p => html`<li><code>${p.path || ''}</code> ${p.message}</li>`)}</ul>` : null}</div>` : null;

export function useVersions(hooks) {
  const { useState, useEffect } = hooks;
  const [versions, setVersions] = useState(null);
  useEffect(() => { api('versions').then(setVersions); }, []);
  return versions;
}

export function download(name, text, type = 'text/plain') {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (document.querySelector(`script[src="${src}"]`)) return resolve();
    const s = Object.assign(document.createElement('script'), { src, onload: resolve, onerror: reject });
    document.head.append(s);
  });
}

export function loadStyle(href) {
  if (!document.querySelector(`link[href="${href}"]`)) document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href }));
}
