// What is wrong with the page open in the browser; test_browser.py runs it once the page has
// loaded. Returns {images, math, overflow, logs, search, title}.
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const out = {images: [], math: [], overflow: [], logs: [], search: 0, title: document.title};

  // Images: loaded, and described.
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) out.images.push('not loaded: ' + img.src);
    // MyST-NB's default alt text is the image's file name: that describes nothing.
    else if (!img.alt.trim() || /\.(png|jpe?g|svg|gif)$/i.test(img.alt)) {
      out.images.push('no alt text: ' + img.src);
    }
  }

  // Math: every formula typeset, no MathJax error, no raw delimiters, no \text{..\..}.
  const article = document.querySelector('article.bd-article')
    || document.querySelector('article') || document.body;
  const untypeset = [...article.querySelectorAll('.math')]
    .filter((m) => !m.querySelector('mjx-container'));
  if (untypeset.length) {
    out.math.push(`${untypeset.length} formulas not typeset, the first: `
      + untypeset[0].textContent.trim().slice(0, 80));
  }
  for (const e of document.querySelectorAll('mjx-merror, [data-mjx-error]')) {
    out.math.push('MathJax error: ' + (e.getAttribute('data-mjx-error') || e.textContent));
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      if (/\\text\{[^}]*\\/.test(item.math)) out.math.push('backslash in \\text: ' + item.math);
    }
  }
  const prose = article.cloneNode(true);
  for (const e of prose.querySelectorAll('pre, code, script, style, mjx-container, .highlight')) {
    e.remove();
  }
  const raw = prose.textContent.match(/\\\(|\\\[|\$\$/g);
  if (raw) out.math.push(`raw TeX left: ${raw.length} delimiters`);

  // Width: nothing past the content column unless a box that scrolls on its own holds it.
  const column = article.getBoundingClientRect();
  const inside = (e) => e.getBoundingClientRect().right <= column.right + 1;
  // A box that scrolls shows all of its content; one that hides or clips it does not count.
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  for (const e of article.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || inside(e)) continue;
    // Clipped to nothing, so never seen: MathJax's assistive MathML for screen readers.
    if (getComputedStyle(e).clip.startsWith('rect(')) continue;
    let boxed = false;
    for (let p = e.parentElement; p && p !== article.parentElement; p = p.parentElement) {
      if (scrolls(p) && inside(p)) { boxed = true; break; }
    }
    if (boxed || (e.parentElement !== article && !inside(e.parentElement))) continue;
    out.overflow.push(`<${e.tagName.toLowerCase()} class="${e.className}"> `
      + `${Math.round(r.right - column.right)} px past the column: `
      + e.textContent.trim().slice(0, 60));
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    out.overflow.push(`the page scrolls sideways (${document.documentElement.scrollWidth} px)`);
  }

  // Outputs' text, for the log check; the search boxes a reader sees around the content.
  for (const o of article.querySelectorAll('.cell_output')) out.logs.push(o.innerText);
  const visible = (e) => e.offsetParent !== null && getComputedStyle(e).visibility !== 'hidden';
  out.search = [...document.querySelectorAll('.search-button-field, form.bd-search')]
    .filter((e) => visible(e) && !article.contains(e)).length;
  return out;
}
