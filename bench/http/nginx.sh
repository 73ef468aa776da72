# bench/http/nginx.sh: sourced by run.sh and crawl.sh, so both measure the
# same server. nginx_serve DIR FILES writes DIR/www (FILES files of 0.5-32 KiB,
# sizes fixed by a seed) and DIR/nginx.conf (1 worker, keep-alive, access log
# off), starts nginx on a free 127.0.0.1 port, waits until it answers and sets
# `port`. Needs $python and $nginx_bin; the caller's cleanup kills
# DIR/nginx.pid.
nginx_serve() {
  local dir=$1 files=$2
  "$python" - "$dir/www" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
rng = random.Random(20251201)
for i in range(n):
    size = rng.randint(512, 32 * 1024)
    with open(os.path.join(root, f"f{i}"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(64)) * (size // 64) + b"x" * (size % 64))
PY
  chmod -R a+rX "$dir/www"
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$dir/temp"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $dir/temp/body;
  proxy_temp_path $dir/temp/proxy;
  fastcgi_temp_path $dir/temp/fastcgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
  }
}
CONF
  "$nginx_bin" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
  local _
  for _ in $(seq 50); do
    "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/f0')" 2>/dev/null && return 0
    sleep 0.1
  done
}
