// The console's progressive enhancement: confirmations, copy buttons, and the page-specific modules. Every
// page works without it (plain forms and links).
if (document.querySelector('[data-live]')) import('/admin/static/live.js');
if (document.querySelector('textarea[data-editor]')) import('/admin/static/editor.js');

document.addEventListener('submit', (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('[data-copy]') : null;
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    document.execCommand('copy'); // no clipboard API on plain http
  }
  button.textContent = 'Copied';
});
