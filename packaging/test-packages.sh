#!/usr/bin/env bash
# CI check of the packages, as a SecOps engineer would use them: build the .deb and .rpm, install
# the .deb with dpkg, run the installed binary, verify and score the systemd unit, inspect the
# .rpm, then remove (config kept) and purge (everything gone). Needs root and Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || cargo install --locked "$tool"
done
command -v rpm >/dev/null || { apt-get update -qq && apt-get install -y -qq rpm >/dev/null; }

bash packaging/build.sh
deb=$(ls -t "$target"/debian/aiwarden_*.deb | head -1)
rpm_file=$(ls -t "$target"/generate-rpm/aiwarden-*.rpm | head -1)
fail() { echo "package check failed: $*" >&2; exit 1; }

echo "== install $deb"
dpkg -i "$deb"
/usr/bin/aiwarden --version
/usr/bin/aiwarden check-config --config /etc/aiwarden/aiwarden.toml >/dev/null
/usr/bin/aiwarden check-config --config /etc/aiwarden/aiwarden.toml --quiet
getent passwd aiwarden >/dev/null || fail "no aiwarden user"
[ "$(stat -c %U:%G /var/lib/aiwarden)" = "aiwarden:aiwarden" ] || fail "state directory ownership"
[ "$(stat -c %a /etc/aiwarden/aiwarden.toml)" = "640" ] || fail "config mode"
grep -qx /etc/aiwarden/aiwarden.toml /var/lib/dpkg/info/aiwarden.conffiles || fail "config not a conffile"
ls /usr/share/aiwarden/rules/mcp-volume.toml >/dev/null
ls /usr/share/aiwarden/connectors/sentinel/azuredeploy.json >/dev/null
unit=/usr/lib/systemd/system/aiwarden.service
[ -f "$unit" ] || unit=/lib/systemd/system/aiwarden.service
systemd-analyze verify "$unit"
exposure=$(systemd-analyze security --offline=true "$unit" | awk '/Overall exposure level/ {print $(NF-2)}')
echo "systemd-analyze security exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e < 2.0) }' || fail "exposure $exposure is not under 2.0"
[ ! -e /etc/systemd/system/multi-user.target.wants/aiwarden.service ] || fail "the package enabled the service"

echo "== inspect $rpm_file"
rpm -qip "$rpm_file" >/dev/null
files=$(rpm -qlp "$rpm_file")
for f in /usr/bin/aiwarden /etc/aiwarden/aiwarden.toml /usr/lib/systemd/system/aiwarden.service /usr/share/aiwarden/rules/mcp-volume.toml \
  /usr/share/aiwarden/connectors/sentinel/azuredeploy.json /usr/share/aiwarden/connectors/elastic/README.md; do
  grep -qx "$f" <<<"$files" || fail "rpm lacks $f"
done
rpm -qcp "$rpm_file" | grep -qx /etc/aiwarden/aiwarden.toml || fail "rpm config not marked"
rpm -qp --scripts "$rpm_file" | grep -q useradd || fail "rpm scripts lack the user"

echo "== remove (keeps config and state), then purge"
echo "# edited" >> /etc/aiwarden/aiwarden.toml
dpkg -r aiwarden
[ ! -e /usr/bin/aiwarden ] || fail "binary left after remove"
[ -f /etc/aiwarden/aiwarden.toml ] || fail "config removed by remove"
[ -d /var/lib/aiwarden ] || fail "state removed by remove"
dpkg -P aiwarden
[ ! -e /etc/aiwarden ] || fail "config left after purge"
[ ! -e /var/lib/aiwarden ] || fail "state left after purge"
! getent passwd aiwarden >/dev/null || fail "user left after purge"
echo "package checks passed"
