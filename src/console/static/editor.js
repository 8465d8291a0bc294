// The policy editor: HuJSON highlighting drawn under a transparent textarea (which keeps native editing, undo
// and keyboard behaviour: Tab still moves focus), line numbers with the lines that have errors marked, and the
// error list's "Line N" entries turned into buttons that put the cursor there.
const textarea = document.querySelector('textarea[data-editor]');
const errorLines = new Map(
  [...document.querySelectorAll('#policy-errors [data-line]')].map((li) => [Number(li.dataset.line), Number(li.dataset.col)]),
);

const wrap = document.createElement('div');
wrap.className = 'editor';
const gutter = document.createElement('div');
gutter.className = 'gutter';
gutter.setAttribute('aria-hidden', 'true');
const pre = document.createElement('pre');
pre.className = 'highlight';
pre.setAttribute('aria-hidden', 'true');
textarea.before(wrap);
wrap.append(gutter, pre, textarea);
textarea.setAttribute('wrap', 'off');
textarea.classList.add('editing');

const token = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\b\d+(?:\.\d+)?\b)/g;

function paint() {
  const text = textarea.value;
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(token)) {
    if (m.index > last) parts.push(document.createTextNode(text.slice(last, m.index)));
    const span = document.createElement('span');
    span.className = m[1] ? 'comment' : m[2] ? (m[3] ? 'key' : 'string') : m[4] ? 'literal' : 'number';
    span.textContent = m[1] ?? m[2] ?? m[4] ?? m[5];
    parts.push(span);
    if (m[3]) parts.push(document.createTextNode(m[3]));
    last = m.index + m[0].length;
  }
  parts.push(document.createTextNode(text.slice(last) + '\n'));
  pre.replaceChildren(...parts);
  const lines = text.split('\n').length;
  if (gutter.childElementCount !== lines) {
    gutter.replaceChildren(
      ...Array.from({ length: lines }, (_, i) => {
        const n = document.createElement('div');
        n.textContent = String(i + 1);
        if (errorLines.has(i + 1)) n.className = 'error-line';
        return n;
      }),
    );
  }
  sync();
}

function sync() {
  pre.scrollTop = gutter.scrollTop = textarea.scrollTop;
  pre.scrollLeft = textarea.scrollLeft;
}

function goTo(line, col) {
  const lines = textarea.value.split('\n');
  const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(0, col - 1);
  textarea.focus();
  textarea.setSelectionRange(offset, offset);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
  textarea.scrollTop = Math.max(0, (line - 5) * lineHeight);
  sync();
}

for (const li of document.querySelectorAll('#policy-errors [data-line]')) {
  const label = li.querySelector('strong');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = label.textContent;
  button.addEventListener('click', () => goTo(Number(li.dataset.line), Number(li.dataset.col)));
  label.replaceWith(button);
}

textarea.addEventListener('input', paint);
textarea.addEventListener('scroll', sync);
paint();
