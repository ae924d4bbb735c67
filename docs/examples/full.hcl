# A Java service with a migration, a sidecar proxy, secrets, Consul registration, peers and metrics.
# berth validate -config docs/examples/full.hcl

log_level    = "info"
stop_timeout = "20s"
drain_delay  = "5s"
user         = "nobody"

main {
  command      = ["java", "-jar", "/app/app.jar"]
  dir          = "/app"
  stop_timeout = "25s"
  rlimits      = { nofile = 65536 }
  after        = ["migrate", "proxy"]
  env = {
    JAVA_OPTS    = "-Xmx1g"
    API_KEY      = "ssm:/prod/app/api-key"
    DATABASE_URL = "postgres://app:${secret("secretsmanager:prod/app/db:password")}@db/app"
  }

  pre_stop  { command = ["/app/bin/drain"], timeout = "20s" }
  post_stop { command = ["/app/bin/flush-cache"] }
}

job "migrate" {
  type    = "oneshot"
  command = ["/app/bin/migrate", "up"]
}

job "proxy" {
  command      = ["/usr/local/bin/proxy", "-listen", ":8443"]
  restart      = "on-failure"
  max_restarts = 10
}

job "rotate-logs" {
  command  = ["/app/bin/rotate-logs"]
  every    = "1h"
  optional = true
}

secret "db" {
  secretsmanager = "prod/app/db"
  env            = { DB_USER = "username", DB_PASSWORD = "password" }
}

secret "app-config" {
  kms_file = "/app/config.json.enc"
  file     = "/run/secrets/config.json"
}

secret "feature-flags" {
  ssm_path   = "/prod/app/flags/"
  env_prefix = "FLAG_"
  refresh    = "5m"
  on_change  = "signal:SIGHUP"
}

secrets {
  timeout = "45s"
  jitter  = "2s"
}

service "app" {
  port = 8080
  tags = ["v1"]

  check { http = "http://127.0.0.1:8080/health", interval = "10s", timeout = "2s" }
}

peers "cluster" {
  service = "app"
  min     = 1
  wait    = "30s"
  env     = "CLUSTER_MEMBERS"
}

consul {
  address = "127.0.0.1:8500"
}

telemetry {
  prometheus = "127.0.0.1:9102"
  tags       = ["team:payments"]
}

logs {
  prefix = true
}
