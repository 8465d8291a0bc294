// Live views: the element with data-live names the event stream, the event to listen for (data-live-event,
// default "change") and the element whose content is re-rendered (data-live-rows), plus optionally a summary line
// (data-live-count). On each event the current view (same URL: filters, page) is fetched again as a fragment,
// rendered by the server.
const live = document.querySelector('[data-live]');
const rows = document.getElementById(live.dataset.liveRows);
const count = live.dataset.liveCount ? document.getElementById(live.dataset.liveCount) : null;
let timer;

/** What identifies a focusable element across re-renders: its link, or its form's action and its label. */
const keyOf = (el) => el.getAttribute('href') ?? `${el.form?.getAttribute('action')}|${el.textContent}`;

async function refresh() {
  const response = await fetch(location.href, { headers: { 'x-fragment': 'rows' }, credentials: 'same-origin' });
  if (!response.ok || response.redirected) return; // logged out: the next navigation goes to the login page
  const focused = rows.contains(document.activeElement) ? keyOf(document.activeElement) : null;
  rows.innerHTML = await response.text();
  if (count) count.textContent = response.headers.get('x-summary') ?? count.textContent;
  if (focused) [...rows.querySelectorAll('a[href], button')].find((el) => keyOf(el) === focused)?.focus();
}

const schedule = () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 100);
};
const events = new EventSource(live.dataset.live);
events.addEventListener(live.dataset.liveEvent ?? 'change', schedule);
// A change between rendering the page and (re)connecting the stream would otherwise be missed.
events.addEventListener('open', schedule);
