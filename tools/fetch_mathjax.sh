#!/usr/bin/env bash
# Fetch the pinned MathJax the site serves itself (book/_static/mathjax/), so formulas render
# offline and without a CDN. The files are committed; rerun this only to change the version:
#   tools/fetch_mathjax.sh            # the pinned version below
# It downloads the npm package with `npm pack`, checks the tarball against the registry's
# sha512 integrity recorded here, and keeps the one combined TeX-to-CHTML file (every TeX
# extension included, so nothing is loaded later) with its fonts and license.
set -euo pipefail
VERSION=3.2.2
INTEGRITY="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
cd "$(dirname "$0")/.."
dest=book/_static/mathjax
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
tarball="$tmp/mathjax-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch_mathjax: mathjax@$VERSION does not match its recorded integrity ($actual)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
rm -rf "$dest.new"
mkdir -p "$dest.new/output/chtml/fonts"
cp "$tmp/package/es5/tex-chtml-full.js" "$dest.new/"
cp -r "$tmp/package/es5/output/chtml/fonts/woff-v2" "$dest.new/output/chtml/fonts/"
cp "$tmp/package/LICENSE" "$dest.new/LICENSE"
echo "mathjax@$VERSION ($INTEGRITY), from npm by tools/fetch_mathjax.sh" > "$dest.new/VERSION"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "MathJax $VERSION in $dest"
