// The workbench shell: hash routes (#/versions, #/policy/2024-05-31, ...), one page module each,
// loaded on first visit so the first paint only needs this file and Preact+htm (13 KB).
import { html, render } from './vendor/preact-htm.mjs';

const PAGES = {
  versions: () => import('./pages/versions.js'),
  policy: () => import('./pages/policy.js'),
  compare: () => import('./pages/compare.js'),
  try: () => import('./pages/try.js'),
  draft: () => import('./pages/draft.js'),
};

function route() {
  const [page, ...rest] = (location.hash.replace(/^#\/?/, '') || 'versions').split('/');
  return { page: PAGES[page] ? page : 'versions', args: rest.map(decodeURIComponent) };
}

async function show() {
  const { page, args } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const module = await PAGES[page]();
  const app = document.getElementById('app');
  if (!app.dataset.ready) { app.textContent = ''; app.dataset.ready = '1'; }   // drop the static placeholder once
  render(null, app);
  render(html`<${module.default} args=${args} />`, app);
  document.title = `${module.title} · 售后协商政策工作台`;
}

window.addEventListener('hashchange', show);
show();
