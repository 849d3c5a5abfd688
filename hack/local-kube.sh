#!/usr/bin/env bash
# A genuine upstream kube-apiserver (v1.20.2, built from Debian's `kubernetes` source package) with
# etcd 3.4, on 127.0.0.1 only, for integration tests and demos.
#
#   hack/local-kube.sh deps     install the Debian packages (needs root)
#   hack/local-kube.sh build    build kube-apiserver once and cache it (4-7 min on 2 cores)
#   hack/local-kube.sh start    deps + build if needed, then start etcd + kube-apiserver, wait until ready
#   hack/local-kube.sh stop     stop both, leave no process, delete the data dir
#   hack/local-kube.sh status   exit 0 when running and ready, 1 otherwise
#   hack/local-kube.sh env      print `export KUBECONFIG=...` (use: eval "$(hack/local-kube.sh env)")
#
# Settings (environment):
#   KUBE_LOCAL_DIR        data dir (etcd data, certificates, logs, kubeconfig); default /tmp/cloudsigma-k8s-kube
#   KUBE_LOCAL_CACHE      where the built binary is kept; default ${XDG_CACHE_HOME:-~/.cache}/cloudsigma-k8s
#   KUBE_APISERVER_BIN    use this kube-apiserver binary instead of the cached build
#   KUBE_LOCAL_APISERVER_PORT (16443), KUBE_LOCAL_ETCD_PORT (23790), KUBE_LOCAL_ETCD_PEER_PORT (23800)
# The kubeconfig is written to $KUBE_LOCAL_DIR/kubeconfig.
set -euo pipefail

DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
KUBE_VERSION="v1.20.2"
KUBE_COMMIT="faecb196815e248d3ecfb03c680a4507229c2a56"

DIR="${KUBE_LOCAL_DIR:-/tmp/cloudsigma-k8s-kube}"
CACHE="${KUBE_LOCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudsigma-k8s}"
CACHED_BIN="$CACHE/kube-apiserver-$KUBE_VERSION"
APISERVER_BIN="${KUBE_APISERVER_BIN:-$CACHED_BIN}"
API_PORT="${KUBE_LOCAL_APISERVER_PORT:-16443}"
ETCD_PORT="${KUBE_LOCAL_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${KUBE_LOCAL_ETCD_PEER_PORT:-23800}"
KUBECONFIG_PATH="$DIR/kubeconfig"
APT_PACKAGES=(golang-go etcd-server golang-github-modern-go-reflect2-dev dpkg-dev openssl curl ca-certificates python3)

log() { printf 'local-kube: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install sudo or run as root)"; fi
}

have_deps() {
  command -v kubectl >/dev/null && command -v go >/dev/null && command -v etcd >/dev/null && command -v openssl >/dev/null &&
    command -v curl >/dev/null && [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] &&
    command -v dpkg-source >/dev/null && command -v python3 >/dev/null
}

cmd_deps() {
  local src=/etc/apt/sources.list.d/cloudsigma-k8s-deb-src.sources
  if [ ! -f "$src" ]; then
    log "adding a deb-src entry for bookworm main ($src)"
    as_root tee "$src" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    as_root apt-get update -qq
  elif ! have_deps; then
    as_root apt-get update -qq
  fi
  if ! have_deps; then
    local pkgs=("${APT_PACKAGES[@]}")
    # kubectl for the demo and the manifest tests; a kubectl already installed (any version) is kept.
    command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
    log "installing ${pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  have_deps || die "packages missing after install: ${APT_PACKAGES[*]}"
}

binary_ok() {
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "Kubernetes $KUBE_VERSION"
}

cmd_build() {
  if binary_ok "$APISERVER_BIN"; then
    log "kube-apiserver $KUBE_VERSION already built: $APISERVER_BIN"
    return 0
  fi
  [ "$APISERVER_BIN" = "$CACHED_BIN" ] || die "KUBE_APISERVER_BIN=$APISERVER_BIN is not a kube-apiserver $KUBE_VERSION"
  cmd_deps
  local work; work="$(mktemp -d "${TMPDIR:-/tmp}/kube-apiserver-build.XXXXXX")"
  log "building kube-apiserver $KUBE_VERSION from Debian source $DEB_VERSION in $work (takes 4-7 minutes)"
  local started=$SECONDS
  (
    cd "$work"
    apt-get source -qq "kubernetes=$DEB_VERSION" >/dev/null 2>&1 ||
      apt-get source "kubernetes=$DEB_VERSION"
    local tree; tree="$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)"
    [ -n "$tree" ] || die "apt-get source did not unpack a kubernetes-* tree"
    mkdir -p gopath/src/k8s.io
    mv "$tree" gopath/src/k8s.io/kubernetes
    cd gopath/src/k8s.io/kubernetes
    export GO111MODULE=off GOPATH="$work/gopath" CGO_ENABLED=0 GOCACHE="$work/gocache" GOFLAGS=""

    # Vendored reflect2 1.0.1 breaks at run time on Go >= 1.18: use Debian's 1.0.2.
    local r2=vendor/github.com/modern-go/reflect2
    rm -rf "$r2"; mkdir -p "$r2"
    find /usr/share/gocode/src/github.com/modern-go/reflect2 -maxdepth 1 -type f \
      \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$r2/" \;

    # The generated OpenAPI definitions are not in the tarball: generate them with the vendored tool.
    go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
    local inputs
    inputs="$( { find -L vendor pkg -name '*.go' -print0 | xargs -0 grep -l '^// *+k8s:openapi-gen=' || true; } |
      xargs -r -n1 dirname | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
      sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)"
    [ -n "$inputs" ] || die "found no openapi-gen input packages"
    "$work/openapi-gen" --logtostderr=false \
      --input-dirs "$inputs" \
      --output-base "$GOPATH/src" \
      --output-package k8s.io/kubernetes/pkg/generated/openapi \
      --output-file-base zz_generated.openapi \
      --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
      --report-filename "$work/api-rule-violations.list"
    [ -f pkg/generated/openapi/zz_generated.openapi.go ] || die "openapi-gen wrote no output"

    local ld="-s -w" pkg
    for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$KUBE_COMMIT -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go build -ldflags "$ld" -o "$work/kube-apiserver" ./cmd/kube-apiserver
  )
  mkdir -p "$CACHE"
  mv "$work/kube-apiserver" "$CACHED_BIN.tmp"
  mv "$CACHED_BIN.tmp" "$CACHED_BIN"
  echo "$DEB_VERSION" > "$CACHED_BIN.debian-version"
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
  binary_ok "$CACHED_BIN" || die "the built binary does not report $KUBE_VERSION"
  log "built $CACHED_BIN in $((SECONDS - started)) s"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

ready() {
  [ -f "$DIR/pki/ca.crt" ] && [ -f "$DIR/token" ] || return 1
  curl -fsS --max-time 2 --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $(cat "$DIR/token")" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

make_pki() {
  local p="$DIR/pki"
  mkdir -p "$p"; chmod 700 "$p"
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.crt" -days 3650 \
    -subj "/CN=cloudsigma-k8s-local-ca" 2>/dev/null
  cat > "$p/serving.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
EOF
  openssl req -newkey rsa:2048 -nodes -keyout "$p/serving.key" -out "$p/serving.csr" -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in "$p/serving.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -out "$p/serving.crt" -days 365 -extfile "$p/serving.ext" 2>/dev/null
  cat > "$p/client.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
  openssl req -newkey rsa:2048 -nodes -keyout "$p/admin.key" -out "$p/admin.csr" -subj "/O=system:masters/CN=admin" 2>/dev/null
  openssl x509 -req -in "$p/admin.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -out "$p/admin.crt" -days 365 -extfile "$p/client.ext" 2>/dev/null
  local token; token="$(openssl rand -hex 16)"
  printf '%s' "$token" > "$DIR/token"; chmod 600 "$DIR/token"
  printf '%s,admin,admin-uid,system:masters\n' "$token" > "$p/tokens.csv"
}

write_kubeconfig() {
  local ca; ca="$(base64 -w0 < "$DIR/pki/ca.crt")"
  umask 077
  cat > "$KUBECONFIG_PATH" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $(cat "$DIR/token")
contexts:
- name: local
  context:
    cluster: local
    user: admin
    namespace: default
current-context: local
EOF
}

cmd_start() {
  if pid_alive "$DIR/kube-apiserver.pid" && ready; then
    log "already running; KUBECONFIG=$KUBECONFIG_PATH"; return 0
  fi
  # a half-started or crashed instance: clean it up first
  cmd_stop quiet
  have_deps || cmd_deps
  cmd_build
  mkdir -p "$DIR/etcd" "$DIR/logs"; chmod 700 "$DIR"
  make_pki

  setsid etcd --name local --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    >"$DIR/logs/etcd.log" 2>&1 < /dev/null &
  echo $! > "$DIR/etcd.pid"
  local i
  for i in $(seq 1 50); do
    curl -fsS --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break
    pid_alive "$DIR/etcd.pid" || { tail -n 20 "$DIR/logs/etcd.log" >&2; die "etcd exited"; }
    sleep 0.2
  done
  curl -fsS --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 ||
    { tail -n 20 "$DIR/logs/etcd.log" >&2; die "etcd not healthy after 10 s"; }

  local p="$DIR/pki"
  setsid "$APISERVER_BIN" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$p/serving.crt" --tls-private-key-file "$p/serving.key" \
    --client-ca-file "$p/ca.crt" --token-auth-file "$p/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer "https://127.0.0.1:$API_PORT" \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --disable-admission-plugins ServiceAccount \
    --allow-privileged=true --enable-priority-and-fairness=false --profiling=false \
    >"$DIR/logs/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$DIR/kube-apiserver.pid"
  write_kubeconfig
  local started=$SECONDS
  for i in $(seq 1 120); do
    ready && break
    pid_alive "$DIR/kube-apiserver.pid" ||
      { tail -n 30 "$DIR/logs/kube-apiserver.log" >&2; cmd_stop quiet; die "kube-apiserver exited"; }
    sleep 0.5
  done
  ready || { tail -n 30 "$DIR/logs/kube-apiserver.log" >&2; cmd_stop quiet; die "kube-apiserver not ready after 60 s"; }
  log "ready in $((SECONDS - started)) s on https://127.0.0.1:$API_PORT; KUBECONFIG=$KUBECONFIG_PATH"
}

stop_one() { # pidfile name
  local pidfile=$1 name=$2 pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop after 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  [ -d "$DIR" ] || { [ "${1:-}" = quiet ] || log "not running"; return 0; }
  stop_one "$DIR/kube-apiserver.pid" kube-apiserver
  stop_one "$DIR/etcd.pid" etcd
  # anything still started from this data dir (a pid file lost to a crash) goes too
  pkill -KILL -f -- "--data-dir $DIR/etcd" 2>/dev/null || true
  pkill -KILL -f -- "--client-ca-file $DIR/pki/ca.crt" 2>/dev/null || true
  rm -rf "$DIR"
  [ "${1:-}" = quiet ] || log "stopped; removed $DIR"
}

cmd_status() {
  if pid_alive "$DIR/kube-apiserver.pid" && pid_alive "$DIR/etcd.pid" && ready; then
    echo "running: https://127.0.0.1:$API_PORT (KUBECONFIG=$KUBECONFIG_PATH)"
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  deps) cmd_deps ;;
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_PATH" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
