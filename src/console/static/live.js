// Live machines list: the server sends a "change" event when machines join, leave, go online or offline, or
// change; the rows of the current view (same filters and page) are then fetched again, rendered by the server.
const table = document.querySelector('[data-live]');
const rows = document.getElementById('machine-rows');
const count = document.getElementById('machine-count');
let timer;

async function refresh() {
  const response = await fetch(location.href, { headers: { 'x-fragment': 'rows' }, credentials: 'same-origin' });
  if (!response.ok || response.redirected) return; // logged out: the next navigation goes to the login page
  const focused = rows.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
  rows.innerHTML = await response.text();
  count.textContent = response.headers.get('x-summary') ?? count.textContent;
  if (focused) rows.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
}

const schedule = () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 100);
};
const events = new EventSource(table.dataset.live);
events.addEventListener('change', schedule);
// A change between rendering the page and (re)connecting the stream would otherwise be missed.
events.addEventListener('open', schedule);
