# Sourced by the benchmarks that put tagtrust beside nginx (bench.sh,
# bench-read.sh): `nginx_conf DIR ROOT PORT [GZIP_PORT]` prints the
# configuration of the reference nginx, its pid, logs and temp files in DIR,
# serving ROOT on 127.0.0.1:PORT as a static file server is run in front of
# a registry (sendfile, no access log, keep-alive without a request limit);
# with GZIP_PORT, the same files gzip-compressed on every request there too.
nginx_conf() {
  local dir=$1 root=$2 port=$3 gzip_port=${4:-}
  cat <<EOF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  default_type application/json;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location / { add_header Cache-Control no-cache; }
  }
EOF
  if [[ -n $gzip_port ]]; then
    cat <<EOF
  # The same files gzip-compressed on every request (nginx's default
  # level 1), as actix-web's Compress middleware would: the reference for
  # tagtrust's compressed-once copies.
  server {
    listen 127.0.0.1:$gzip_port;
    root $root;
    gzip on;
    gzip_types application/json;
    location / { add_header Cache-Control no-cache; }
  }
EOF
  fi
  echo "}"
}
