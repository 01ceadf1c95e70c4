// Small DOM helpers. Text always goes in through textContent: metadata and daemon messages are untrusted.

/**
 * el('button', {class: 'icon', title: 'Copy', onclick: fn}, 'text', childNode)
 * Props starting with "on" become listeners, `dataset` is merged, everything else is an attribute.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Copy text to the clipboard; the execCommand path covers pages that lost focus (the async API needs it). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea', { style: 'position:fixed;opacity:0' });
    area.value = text;
    document.body.append(area);
    area.select();
    const copied = document.execCommand('copy');
    area.remove();
    return copied;
  }
}

/** Call `fn` once `ms` have passed without another call (typing, resizing); `.cancel()` drops a pending call. */
export function debounce(fn, ms) {
  let timer;
  const later = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  later.cancel = () => clearTimeout(timer);
  return later;
}

/** Show `message` in `node` styled as ok or error (class names from sidepanel.css). */
export function showResult(node, ok, message) {
  node.textContent = message;
  node.classList.toggle('ok', ok);
  node.classList.toggle('error', !ok);
}
