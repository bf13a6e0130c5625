#!/usr/bin/env bash
# Builds a tiny container image from Debian's static busybox, offline, as an OCI archive, and
# imports it into skiff's image store as busybox:local (what the manifests here use).
#
#   apt-get install runc busybox-static     # what container pods need on the node
#   examples/containers/import-busybox.sh   # SKIFF_DATA_DIR as for serve (default ./skiff-data)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
SKIFF=${SKIFF:-$root/target/release/skiff}
BUSYBOX=${BUSYBOX:-/bin/busybox}
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "$BUSYBOX is dynamically linked: install busybox-static" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs layout=$work/layout
mkdir -p "$root"/{bin,etc,tmp,www} "$layout/blobs/sha256"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in sh echo cat ls sleep httpd wget nc true false env id ps grep seq printf mkdir touch; do
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:1000:1000::/www:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nwww:x:1000:\n' > "$root/etc/group"
echo '<h1>served by a skiff container</h1>' > "$root/www/index.html"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 "$work/layer.tar"
blob() { # file -> digest (the file is moved into the layout)
  local d; d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$layout/blobs/sha256/$d"
  echo "$d"
}
size() { stat -c %s "$layout/blobs/sha256/$1"; }
layer=$(blob "$work/layer.tar.gz")
cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]}}
JSON
config=$(blob "$work/config.json")
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$(size "$layer")}]}
JSON
manifest=$(blob "$work/manifest.json")
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
cat > "$layout/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$manifest"),"annotations":{"org.opencontainers.image.ref.name":"local"}}]}
JSON
tar -C "$layout" -cf "$work/busybox.tar" .
"$SKIFF" image import "$work/busybox.tar" busybox:local
