// Draft: edit or upload a policy file in a YAML editor; its problems appear at their lines (the
// same located errors as `aftersale validate`), the policy cases run against it, its impact on
// the sample corpus is charted, and the draft and its Markdown diff are downloaded. Nothing is
// written on the server: every job runs in a separate, time-bounded process.
import { html, useState, useEffect, useRef } from '../vendor/preact-htm.mjs';
import { api, ErrorBox, ACTIONS, ACTORS, KINDS, download, loadScript, loadStyle } from '../common.js';

export const title = '草稿';

let editorReady = null;
function loadEditor() {
  loadStyle('vendor/codemirror.css');
  editorReady ??= loadScript('vendor/codemirror.js').then(() => loadScript('vendor/codemirror-yaml.js'));
  return editorReady;
}

function ImpactChart({ result }) {
  const canvas = useRef(null);
  useEffect(() => {
    let chart;
    loadScript('vendor/chart.umd.min.js').then(() => {
      const labels = [], toDenied = [], toAllowed = [], other = [];
      for (const [actor, actions] of Object.entries(result.counts)) {
        for (const [action, kinds] of Object.entries(actions)) {
          labels.push(`${ACTORS[actor]}·${ACTIONS[action] || action}`);
          toDenied.push(kinds.allowed_to_denied || 0);
          toAllowed.push(kinds.denied_to_allowed || 0);
          other.push(Object.entries(kinds).filter(([k]) => !['allowed_to_denied', 'denied_to_allowed'].includes(k)).reduce((s, [, n]) => s + n, 0));
        }
      }
      chart = new window.Chart(canvas.current, {
        type: 'bar',
        data: { labels, datasets: [
          { label: '允许→拒绝', data: toDenied, backgroundColor: '#b42318' },
          { label: '拒绝→允许', data: toAllowed, backgroundColor: '#12805c' },
          { label: '其他变化（原因、约束）', data: other, backgroundColor: '#9aa5b1' }] },
        options: { indexAxis: 'y', animation: false, responsive: true, maintainAspectRatio: false,
          scales: { x: { beginAtZero: true, title: { display: true, text: '工单数' } } } },
      });
    });
    return () => chart?.destroy();
  }, [result]);
  const rows = Object.values(result.counts).reduce((n, a) => n + Object.keys(a).length, 0);
  return html`<div style=${`position:relative;height:${Math.max(120, 40 + rows * 34)}px`}><canvas ref=${canvas} id="impact-chart" aria-label="草稿影响图"></canvas></div>`;
}

export default function Draft() {
  const host = useRef(null);
  const editor = useRef(null);
  const marks = useRef([]);
  const [name, setNameState] = useState('draft.yaml');
  const nameRef = useRef('draft.yaml');   // the editor's change handler outlives renders: read the name here
  const setName = (value) => { nameRef.current = value; setNameState(value); };
  const [versions, setVersions] = useState(null);
  const [validation, setValidation] = useState(null);
  const [busy, setBusy] = useState('');
  const [cases, setCases] = useState(null);
  const [impact, setImpact] = useState(null);
  const [error, setError] = useState(null);
  const timer = useRef(0);
  const seq = useRef(0);

  const text = () => editor.current?.getValue() || '';

  function showProblems(result) {
    const cm = editor.current;
    for (const m of marks.current) { cm.removeLineClass(m, 'background', 'cm-error-line'); }
    cm.clearGutter('problems');
    marks.current = [];
    for (const p of result.problems || []) {
      if (!p.draft) continue;
      const line = Math.max(0, p.line - 1);
      marks.current.push(cm.addLineClass(line, 'background', 'cm-error-line'));
      const dot = Object.assign(document.createElement('span'), { className: 'cm-gutter-error', textContent: '●', title: p.message });
      cm.setGutterMarker(line, 'problems', dot);
    }
  }

  async function validate() {
    const mine = ++seq.current;
    setBusy('校验中…');
    try {
      const result = await api('draft/validate', { text: text(), name: nameRef.current });
      if (mine !== seq.current) return;
      setValidation(result); setError(null); showProblems(result);
    } catch (e) { if (mine === seq.current) setError(e); }
    finally { if (mine === seq.current) setBusy(''); }
  }

  function schedule() { clearTimeout(timer.current); timer.current = setTimeout(validate, 500); }

  useEffect(() => {
    api('versions').then(setVersions, setError);
    loadEditor().then(() => {
      editor.current = window.CodeMirror(host.current, {
        value: '', mode: 'yaml', lineNumbers: true, indentUnit: 2, tabSize: 2, lineWrapping: false,
        gutters: ['problems', 'CodeMirror-linenumbers'], extraKeys: { Tab: (cm) => cm.replaceSelection('  '), 'Shift-Tab': false },
        screenReaderLabel: '草稿 YAML 编辑器',
      });
      editor.current.on('change', schedule);
      window.workbenchEditor = editor.current;   // for the browser tests and the console
    });
  }, []);

  async function loadVersion(version) {
    await loadEditor();
    const source = await api(`draft/source/${version}`);
    setName(source.file); setCases(null); setImpact(null);
    editor.current.setValue(source.text);
  }
  async function upload(event) {
    const file = event.target.files[0];
    if (!file) return;
    setName(file.name); setCases(null); setImpact(null);
    editor.current.setValue(await file.text());
  }
  async function runJob(job, setter) {
    setBusy(job === 'cases' ? '运行用例中…' : '计算影响中…'); setter(null);
    try { setter(await api(`draft/${job}`, { text: text(), name: nameRef.current })); setError(null); } catch (e) { setError(e); }
    finally { setBusy(''); }
  }
  async function downloadDiff() {
    try {
      const result = await api('draft/diff', { text: text(), name: nameRef.current });
      if (!result.ok) { setError(result); return; }
      download(`${name.replace(/\.ya?ml$/, '')}.diff.md`, result.markdown, 'text/markdown');
    } catch (e) { setError(e); }
  }
  const jump = (line) => { const cm = editor.current; cm.focus(); cm.setCursor({ line: line - 1, ch: 0 }); cm.scrollIntoView(null, 100); };
  const problems = validation?.problems || [];
  const inForce = versions?.in_force;

  return html`
    <h1>政策草稿 <small class="muted">Draft</small></h1>
    <div class="toolbar">
      <button onClick=${() => loadVersion(inForce)} disabled=${!inForce} id="load-in-force">编辑生效版本 ${inForce || ''}</button>
      <label>上传 <input type="file" accept=".yaml,.yml,text/yaml" onChange=${upload} id="upload" /></label>
      <label>文件名 <input type="text" size="18" value=${name} onChange=${e => { setName(e.target.value); schedule(); }} /></label>
      <button onClick=${() => download(name, text(), 'text/yaml')}>下载草稿</button>
      <button onClick=${downloadDiff}>下载 Markdown 差异</button>
      <span class="small muted" aria-live="polite">${busy}</span>
    </div>
    <p class="small muted">草稿只在浏览器与一个独立、限时的进程里处理，不会写入 <code>rules/</code>。提交方式：下载后放进 rules/ 并发起 PR。</p>
    <div class="row">
      <div class="grow" style="flex-basis:640px"><div ref=${host} id="editor"></div></div>
      <section class="grow" style="max-width:480px">
        <div class="card" id="problems" aria-live="polite">
          <h2 style="margin-top:0">问题 ${validation ? (validation.valid ? html`<span class="badge b-ok">✓ 通过校验</span>` : html`<span class="badge b-bad">${problems.filter(p => p.severity === 'error').length} 个错误</span>`) : ''}</h2>
          ${validation?.valid ? html`<p class="small">版本 <strong>${validation.version}</strong>，生效 ${validation.effective_from}：已编译、交叉检查（与 aftersale validate 相同）。</p>` : null}
          <ul class="problems small">${problems.map(p => html`<li>
            ${p.draft ? html`<a href="#" class="loc" onClick=${e => { e.preventDefault(); jump(p.line); }}>${p.file}:${p.line}:${p.column}</a>` : html`<span class="loc">${p.file}:${p.line}:${p.column}</span>`}
            <code>${p.path || '/'}</code> ${p.severity !== 'error' ? html`<span class="badge b-warn">${p.severity}</span>` : null} ${p.message}
            ${p.hint ? html`<div class="muted">提示：${p.hint}</div>` : null}</li>`)}</ul>
        </div>
        <div class="toolbar">
          <button class="primary" id="run-cases" onClick=${() => runJob('cases', setCases)} disabled=${!!busy}>运行政策用例</button>
          <button class="primary" id="run-impact" onClick=${() => runJob('impact', setImpact)} disabled=${!!busy}>影响分析</button>
        </div>
        <${ErrorBox} error=${error} />
        ${cases ? html`<div class="card" id="cases-result">${cases.ok === false ? html`<${ErrorBox} error=${cases} />` : html`
          <h3><span class=${cases.failed ? 'fail' : 'pass'}>${cases.passed} 通过，${cases.failed} 失败</span> <small class="muted">（${cases.total} 个用例，草稿版本 ${cases.version}）</small></h3>
          <ul class="small failures">${cases.cases.filter(c => !c.passed).slice(0, 50).map(c => html`<li><pre class="mono" style="white-space:pre-wrap;margin:0">${c.text}</pre></li>`)}</ul>`}</div>` : null}
        ${impact ? html`<div class="card" id="impact-result">${impact.ok === false ? html`<${ErrorBox} error=${impact} />` : html`
          <h3>草稿 ${impact.to} 对比生效版本 ${impact.from}</h3>
          <p class="small muted">${impact.tickets} 张样例工单、${impact.compared} 次决定${impact.undecidable ? `，${impact.undecidable} 张无法判定` : ''}。</p>
          ${Object.keys(impact.counts).length ? html`<${ImpactChart} result=${impact} />` : html`<p>没有决定改变。</p>`}`}</div>` : null}
      </section>
    </div>
  `;
}
